#!/usr/bin/env bash
# The standard benchmark (`make bench`): a fresh servidor + 3 workers x 4 threads on
# 127.0.0.1, a short fixed set of sd-bench runs, one table.
#
#   scripts/bench.sh [BIN]        BIN: folder with servidor, worker, sd-bench (build/bin)
#
# Environment: BIN (same as the argument), SD_BENCH (the sd-bench to use; $BIN/sd-bench),
# BENCH_BUDGET_S (110: the runs' total time
# bound), SD_STORE (the server's --store; default: sqlite in the logs folder, the
# server's default kind of store, never the repository's ./sd-data), KEEP_LOGS=1 (keep the logs folder even when everything passed).
# Exit status: 0 every run passed (every task verified ok); 1 otherwise.
#
# Every process this script starts is stopped by its PID on exit, failure or Ctrl-C.
# Nothing sleeps to synchronise: readiness is the server's and workers' own log lines,
# read from FIFOs with a deadline.
set -euo pipefail

BIN=${1:-${BIN:-build/bin}}
SD_BENCH=${SD_BENCH:-$BIN/sd-bench}
BUDGET_S=${BENCH_BUDGET_S:-110}
START_TIMEOUT_S=15
THREADS=4
N_WORKERS=3

for exe in "$BIN/servidor" "$BIN/worker" "$SD_BENCH"; do
  if [[ ! -x $exe ]]; then
    echo "bench.sh: $exe not found or not executable (build first, or pass BIN)" >&2
    exit 1
  fi
done

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/sd-bench.XXXXXX")
pids=()       # servidor and workers, stopped with SIGTERM (they shut down cleanly)
drainers=()   # cat processes that keep emptying the FIFOs into the log files
failed=0
bench_pid=    # the sd-bench run in progress, if any

now_us() { echo "${EPOCHREALTIME/./}"; }

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $bench_pid ]]; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # Bounded wait: a watchdog kills whatever has not exited after 5 s. Its trap stops
    # its own sleep when it is called off, so nothing outlives the script.
    (
      s=
      trap 'kill $s 2>/dev/null; exit 0' TERM
      sleep 5 &
      s=$!
      wait "$s"
      kill -KILL "${pids[@]}" 2>/dev/null
    ) &
    local watchdog=$!
    wait "${pids[@]}" 2>/dev/null || true
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
  fi
  if ((${#drainers[@]})); then
    kill "${drainers[@]}" 2>/dev/null || true
    wait "${drainers[@]}" 2>/dev/null || true
  fi
  if ((rc != 0 || failed != 0)) || [[ ${KEEP_LOGS:-0} == 1 ]]; then
    echo "bench.sh: logs kept in $LOGS" >&2
  else
    rm -rf "$LOGS"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME ARGV... : runs ARGV with stdout+stderr into a FIFO opened on fd OUT_FD;
# sets STARTED_PID (the program itself: a plain command line after '&' is exec'd).
start() {
  local name=$1
  shift
  mkfifo "$LOGS/$name.fifo"
  "$@" >"$LOGS/$name.fifo" 2>&1 </dev/null &
  STARTED_PID=$!
  pids+=("$STARTED_PID")
  exec {OUT_FD}<"$LOGS/$name.fifo"
}

# wait_for_line FD LOGFILE REGEX DEADLINE_US : copies lines to LOGFILE until one matches
# REGEX (BASH_REMATCH holds the match); fails on EOF or at the deadline.
wait_for_line() {
  local fd=$1 log=$2 re=$3 deadline=$4 line left
  while :; do
    left=$((deadline - $(now_us)))
    ((left > 0)) || return 1
    IFS= read -r -t "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))" -u "$fd" line || return 1
    printf '%s\n' "$line" >>"$log"
    [[ $line =~ $re ]] && return 0
  done
}

die_start() {
  echo "bench.sh: $1 did not become ready (it exited, or ${START_TIMEOUT_S}s passed); its output:" >&2
  sed 's/^/  | /' "$2" >&2 || true
  exit 1
}

# ---------------------------------------------------------------- server and workers
deadline=$(($(now_us) + START_TIMEOUT_S * 1000000))
start servidor "$BIN/servidor" --host 127.0.0.1 --port 0 --store "${SD_STORE:-sqlite:$LOGS/sd.db}"
server_fd=$OUT_FD
wait_for_line "$server_fd" "$LOGS/servidor.log" \
  'Servidor iniciado en 127\.0\.0\.1:([0-9]+)' "$deadline" || die_start servidor "$LOGS/servidor.log"
PORT=${BASH_REMATCH[1]}
# From now on a background cat empties each FIFO, so a chatty process never blocks on
# a full pipe.
cat <&"$server_fd" >>"$LOGS/servidor.log" &
drainers+=("$!")

worker_fds=()
for i in $(seq 1 "$N_WORKERS"); do
  start "worker$i" "$BIN/worker" --host 127.0.0.1 --port "$PORT" --threads "$THREADS"
  worker_fds+=("$OUT_FD")
done
for i in $(seq 1 "$N_WORKERS"); do
  fd=${worker_fds[$((i - 1))]}
  wait_for_line "$fd" "$LOGS/worker$i.log" 'Registrado con ID: (worker_[0-9]+)' "$deadline" ||
    die_start "worker$i" "$LOGS/worker$i.log"
  cat <&"$fd" >>"$LOGS/worker$i.log" &
  drainers+=("$!")
done
echo "bench.sh: servidor on 127.0.0.1:$PORT, $N_WORKERS workers x $THREADS threads; logs in $LOGS" >&2

# ---------------------------------------------------------------- the runs
# name | sd-bench arguments. W1-W3 are the peer benchmark's workloads (shared/peers/README.md).
configs=(
  "W1 reverse 1x256|--type reverse --conns 1 --inflight 256 --tasks 20000 --warmup 2000"
  "W2 reverse sequential|--type reverse --conns 1 --inflight 1 --tasks 2000 --warmup 200"
  "hash 4x64|--type hash --conns 4 --inflight 64 --tasks 20000 --warmup 2000"
  "reverse 16x16|--type reverse --conns 16 --inflight 16 --tasks 20000 --warmup 2000"
  "fibonacci 100 1x64|--type fibonacci --payload 100 --conns 1 --inflight 64 --tasks 5000"
  "W3 compute 200k x200|--type compute --payload 200000 --conns 1 --inflight 200 --tasks 200"
)

# sd-bench writes its JSON itself, compact and in a fixed shape, so a regex is enough.
field() { [[ $json =~ \"$1\":([0-9.]+) ]] && echo "${BASH_REMATCH[1]}" || echo "-"; }

budget_end=$(($(now_us) + BUDGET_S * 1000000))
rows=()
i=0
for entry in "${configs[@]}"; do
  i=$((i + 1))
  name=${entry%%|*}
  read -r -a args <<<"${entry#*|}"
  left_s=$(((budget_end - $(now_us)) / 1000000))
  if ((left_s < 5)); then
    rows+=("$name|-|-|-|-|-|-|SKIPPED (budget)")
    failed=1
    continue
  fi
  cmd=("$SD_BENCH" --host 127.0.0.1 --port "$PORT" "${args[@]}" --timeout "$((left_s < 60 ? left_s : 60))s" --json)
  echo "bench.sh: [$i/${#configs[@]}] ${cmd[*]}" >&2
  rc=0
  # In the background so that a signal to this script is handled at once (bash runs
  # traps only after a foreground child exits); cleanup stops it by its PID.
  "${cmd[@]}" >"$LOGS/run$i.json" 2>"$LOGS/run$i.err" &
  bench_pid=$!
  wait "$bench_pid" || rc=$?
  bench_pid=
  json=$(tail -n 1 "$LOGS/run$i.json")
  status=ok
  if ((rc != 0)); then
    status="FAIL (exit $rc)"
    failed=1
    sed 's/^/  | /' "$LOGS/run$i.err" >&2
  fi
  rows+=("$name|$(field tasks)|$(field throughput)|$(field p50)|$(field p99)|$(field max)|$(field errors)+$(field lost)|$status")
done

# Every worker must have survived the runs.
for p in "${pids[@]}"; do
  if ! kill -0 "$p" 2>/dev/null; then
    echo "bench.sh: process $p exited during the runs" >&2
    failed=1
  fi
done

printf '\n%-24s %7s %10s %9s %9s %9s %9s  %s\n' config tasks tasks/s p50_us p99_us max_us err+lost status
for row in "${rows[@]}"; do
  IFS='|' read -r c t r p50 p99 mx e s <<<"$row"
  printf '%-24s %7s %10s %9s %9s %9s %9s  %s\n' "$c" "$t" "$r" "$p50" "$p99" "$mx" "$e" "$s"
done
printf '(%s: servidor + %d workers x %d threads on 127.0.0.1, %d CPUs)\n' \
  "$(date -u +%FT%TZ)" "$N_WORKERS" "$THREADS" "$(nproc)"
exit "$failed"
