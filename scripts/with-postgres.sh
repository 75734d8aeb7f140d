#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster (for the store tests), exported as
# SD_TEST_PG_URI, and stops the cluster afterwards whatever the command's outcome.
# Without PostgreSQL's binaries the command runs without it (those tests skip, saying why).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ -x "$here/pg-test-cluster.sh" ] && [ -d /usr/lib/postgresql ] && [ -z "${SD_TEST_PG_URI:-}" ]; then
  dir="$(mktemp -d /tmp/sd-pg.XXXXXX)"
  if uri="$("$here/pg-test-cluster.sh" start "$dir")"; then
    export SD_TEST_PG_URI="$uri"
    trap '"$here/pg-test-cluster.sh" stop "$dir" >/dev/null 2>&1 || true' EXIT
  else
    echo "with-postgres: could not start a PostgreSQL test cluster; PostgreSQL tests will skip" >&2
  fi
fi
"$@"
