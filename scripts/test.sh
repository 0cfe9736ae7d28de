#!/usr/bin/env bash
# The whole fdist test suite, from a fresh Debian 12 machine:
#   1. installs missing packages (scripts/deps.sh),
#   2. builds Release and runs every test under ctest,
#   3. builds again with ASan + UBSan and runs the suite again,
#   4. builds the libFuzzer targets with clang and runs each for a fixed time.
# Exits non-zero on the first failing stage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
stage() { printf '\n=== %s\n' "$*"; }

stage "dependencies"
./scripts/deps.sh

stage "release build and tests"
dir=$(./scripts/build.sh release | tail -n 1)
(cd "$dir" && ctest --output-on-failure -j "$jobs" -LE fuzz)

stage "ASan + UBSan build and tests"
dir=$(./scripts/build.sh sanitize | tail -n 1)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$dir" && ctest --output-on-failure -j "$jobs" -LE fuzz)

stage "fuzzing (libFuzzer, ${FDIST_FUZZ_SECONDS:-20} s per target)"
dir=$(./scripts/build.sh fuzz | tail -n 1)
if [ -n "${FDIST_FUZZ_SECONDS:-}" ]; then
  cmake -S "$root" -B "$dir" -DFDIST_FUZZ_SECONDS="$FDIST_FUZZ_SECONDS" >/dev/null
fi
(cd "$dir" && ctest --output-on-failure -L fuzz --no-tests=ignore)

stage "all stages passed"
