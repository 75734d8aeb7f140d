#!/usr/bin/env bash
# `make demo`: the seed's session on one terminal. Starts the server and three workers in
# the background (their consoles go to logs), opens the interactive client, and stops them
# all when the client exits (or on Ctrl-C).
set -euo pipefail
BIN="${1:-build/bin}"
PORT="${SD_PORT:-9000}"
LOGS="$(mktemp -d /tmp/sd-demo.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

# Bounded wait for a line in a log file; fails with the log's tail.
wait_line() {
  local file=$1 pattern=$2
  for _ in $(seq 200); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "demo: timed out waiting for '$pattern' in $file:" >&2
  tail -n 20 "$file" >&2
  return 1
}

# Tasks and results survive a restart of the demo: SQLite under ./sd-data.
"$BIN/servidor" --port "$PORT" --data-dir "${SD_DATA_DIR:-sd-data}" >"$LOGS/servidor.log" 2>&1 &
pids+=($!)
wait_line "$LOGS/servidor.log" "Esperando conexiones" || exit 1
cat "$LOGS/servidor.log"
for i in 1 2 3; do
  "$BIN/worker" --port "$PORT" >"$LOGS/worker$i.log" 2>&1 &
  pids+=($!)
  wait_line "$LOGS/worker$i.log" "Pool de hilos" || exit 1
  cat "$LOGS/worker$i.log"
done
echo "(registros en $LOGS)"
echo
"$BIN/cliente" --port "$PORT" || true
