#!/usr/bin/env bash
# Runs a libFuzzer binary for a while on a copy of its seed corpus.
#
#   tests/fuzz/run.sh BINARY SECONDS
#
# The seed corpus tests/fuzz/corpus/<name>/ (name = BINARY without "fuzz_") and the
# inputs of bugs found before, tests/fuzz/regressions/<name>/, are copied to a temporary
# directory, so a run never modifies the repository; inputs the fuzzer finds are thrown
# away with it. libFuzzer runs every seed first, so a regression fails the run at once.
# Crash, leak and timeout inputs go to tests/fuzz/artifacts/ (ignored by git). Exits
# non-zero when the fuzzer finds one. Replay one with  BINARY tests/fuzz/artifacts/crash-...
set -euo pipefail
export LC_ALL=C

if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY SECONDS" >&2
  exit 2
fi
binary=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$binary")
name=${name#fuzz_}
corpus=$here/corpus/$name
regressions=$here/regressions/$name
dict=$here/$name.dict
artifacts=$here/artifacts

[ -x "$binary" ] || { echo "run.sh: $binary is not an executable (build it first)" >&2; exit 2; }
[ -d "$corpus" ] || { echo "run.sh: no seed corpus at $corpus" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sd-fuzz-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -R "$corpus" "$work/corpus"
[ -d "$regressions" ] && cp "$regressions"/* "$work/corpus/"
mkdir -p "$artifacts"

args=(
  "$work/corpus"
  -max_total_time="$seconds"
  -rss_limit_mb=2048
  -max_len=65536
  -timeout=30
  -artifact_prefix="$artifacts/"
  -print_final_stats=1
)
[ -f "$dict" ] && args+=(-dict="$dict")

echo "run.sh: fuzzing $binary for ${seconds}s on a copy of $corpus and $regressions" \
  "($(ls "$work/corpus" | wc -l) inputs)"
before=$(ls "$artifacts")
status=0
"$binary" "${args[@]}" || status=$?
after=$(ls "$artifacts")

new=$(comm -13 <(echo "$before") <(echo "$after") || true)
if [ "$status" -ne 0 ] || [ -n "$new" ]; then
  echo "run.sh: FAILED (exit status $status); new artifacts in $artifacts:" >&2
  for f in $new; do echo "  $artifacts/$f" >&2; done
  [ "$status" -ne 0 ] || status=1
  exit "$status"
fi
echo "run.sh: no crash in ${seconds}s"
