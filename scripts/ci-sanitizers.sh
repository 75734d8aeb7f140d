#!/usr/bin/env bash
# The sanitizer stage of CI: the whole suite under ASan+UBSan, the worker pool and the
# server core under TSan, then a minute of libFuzzer on the protocol decoding. Stops at
# the first failure. Run from anywhere; FUZZ_SECONDS and JOBS pass through to make.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=${FUZZ_SECONDS:-60}

stage() {
  local name=$1
  shift
  printf '\n==================================================================\n'
  printf '== %s: %s\n' "$name" "$*"
  printf '==================================================================\n'
  local start=$SECONDS
  if ! "$@"; then
    printf '\n== %s FAILED after %ss\n' "$name" $((SECONDS - start)) >&2
    exit 1
  fi
  printf '== %s passed in %ss\n' "$name" $((SECONDS - start))
}

stage "ASan+UBSan (whole suite)" make asan
stage "TSan (ctest -L tsan)" make tsan
stage "libFuzzer (${fuzz_seconds}s)" make fuzz FUZZ_SECONDS="$fuzz_seconds"
printf '\n== all sanitizer stages passed in %ss\n' "$SECONDS"
