#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the store tests and benchmarks.
#
#   scripts/pg-test-cluster.sh start DIR   creates and starts a cluster in DIR, prints its URI
#   scripts/pg-test-cluster.sh stop DIR    stops it and removes DIR
#
# start prints exactly one line on stdout, the URI to hand to the tests:
#   postgresql://postgres@127.0.0.1:PORT/sd_test
# so CI can do: export SD_TEST_PG_URI="$(scripts/pg-test-cluster.sh start "$dir")"
# Everything else (progress, server log on failure) goes to stderr.
#
# The cluster listens on 127.0.0.1 only, on a free port, with trust auth for local TCP
# and no Unix socket (so a long DIR cannot exceed the socket path limit). PostgreSQL
# refuses to run as root, so as root the server runs as the user $SD_PG_OS_USER
# (default `postgres`, made by the Debian package) and DIR is handed to that user; DIR's
# parent folders must let that user in (e.g. somewhere under /tmp, not under /root).
# Every wait is bounded: $SD_PG_START_TIMEOUT seconds (default 60) for each of startup,
# readiness and shutdown.
set -euo pipefail

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
OS_USER="${SD_PG_OS_USER:-postgres}"
TIMEOUT="${SD_PG_START_TIMEOUT:-60}"
DB_NAME=sd_test
DB_USER=postgres
MARKER=.sd-pg-test-cluster   # stop removes only a DIR that start made

die() { echo "pg-test-cluster: $*" >&2; exit 1; }
log() { echo "pg-test-cluster: $*" >&2; }

usage() { die "usage: $0 start DIR | stop DIR"; }

# Runs a PostgreSQL binary as the cluster's OS user (as ourselves when not root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$OS_USER" -- "$@"
  else
    "$@"
  fi
}

# A TCP port nobody listens on right now. Another process may take it before the
# server binds it; start() then retries with a new port.
free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

start() {
  local dir="$1"
  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL 15 at $PG_BIN (apt-get install postgresql)"
  command -v python3 >/dev/null || die "python3 is needed to pick a free port"
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir exists and is not empty; refusing to touch it"
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  touch "$dir/$MARKER"
  if [ "$(id -u)" -eq 0 ]; then
    id "$OS_USER" >/dev/null 2>&1 || die "as root the server must run as '$OS_USER', which does not exist"
    chown -R "$OS_USER:" "$dir"
    chmod 700 "$dir"
    as_pg test -w "$dir" ||
      die "user '$OS_USER' cannot write $dir (a parent folder shuts it out?); use a DIR under /tmp"
  fi

  log "initdb in $dir/data"
  if ! as_pg "$PG_BIN/initdb" -D "$dir/data" -U "$DB_USER" --auth-local=trust --auth-host=trust \
         -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed"
  fi

  # From here on, a failure must not leave a server running that nobody will stop.
  STARTED_DATA=""
  trap 'if [ -n "$STARTED_DATA" ]; then
          as_pg "$PG_BIN/pg_ctl" -D "$STARTED_DATA" -w -t "$TIMEOUT" -m immediate stop >/dev/null 2>&1 || true
        fi' EXIT

  local port="" attempt
  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    log "starting on 127.0.0.1:$port (attempt $attempt)"
    if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t "$TIMEOUT" \
         -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=''" \
         start >&2; then
      STARTED_DATA="$dir/data"
      break
    fi
    port=""
    # A port taken in the meantime makes the server exit at once; anything else is fatal.
    if ! grep -q "could not bind\|Address already in use" "$dir/server.log" 2>/dev/null; then
      cat "$dir/server.log" >&2 || true
      die "the server did not start"
    fi
    # The server may still be shutting down after the failed attempt.
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w -t "$TIMEOUT" -m immediate stop >/dev/null 2>&1 || true
  done
  [ -n "$port" ] || die "no free port after 5 attempts"
  echo "$port" >"$dir/port"

  local deadline=$((SECONDS + TIMEOUT))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$DB_USER" -t 2; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      cat "$dir/server.log" >&2 || true
      die "the server did not accept connections within ${TIMEOUT}s"
    fi
    sleep 0.1   # polling interval of a bounded wait, not a synchronisation
  done

  "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME" >&2 ||
    die "createdb $DB_NAME failed"
  log "ready"
  STARTED_DATA=""   # success: the server is the caller's now, to stop with `stop DIR`
  echo "postgresql://$DB_USER@127.0.0.1:$port/$DB_NAME"
}

stop() {
  local dir="$1"
  [ -d "$dir" ] || { log "$dir does not exist; nothing to stop"; return 0; }
  [ -e "$dir/$MARKER" ] || die "$dir was not made by '$0 start'; refusing to remove it"
  if [ -f "$dir/data/postmaster.pid" ]; then
    if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w -t "$TIMEOUT" -m fast stop >&2; then
      # pg_ctl status: 0 running, 3 not running (a stale pid file after a crash).
      if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        log "fast shutdown failed; trying immediate"
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w -t "$TIMEOUT" -m immediate stop >&2 ||
          die "could not stop the server in $dir"
      fi
    fi
  fi
  rm -rf -- "$dir"
  log "stopped and removed $dir"
}

[ $# -eq 2 ] || usage
case "$1" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac
