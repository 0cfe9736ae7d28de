#!/usr/bin/env bash
# ThreadSanitizer over fdnode's engines (not run by CI or ctest): builds a TSan
# flavour in a temp dir, runs the shared-table unit test and the threads = 2
# integration tests, and fails on any report outside tests/node/tsan.supp.
# usage: tests/node/tsan.sh [BUILD_DIR (default: a temp dir, removed after)]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-}
keep=1
[ -n "$dir" ] || { dir=$(mktemp -d /tmp/fdist-tsan.XXXXXX); keep=; }
trap '[ -n "$keep" ] || rm -rf "$dir"' EXIT
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="-fsanitize=thread -O1" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$dir" -j "$(nproc)" --target fdnode fdsched fdadmin fdstore nd_pull \
  test_node_shared >/dev/null
# A report makes the process exit 66: a daemon's SIGTERM exit is then not 0
# and the integration test fails; history_size keeps the other thread's stack.
export TSAN_OPTIONS="suppressions=$root/tests/node/tsan.supp history_size=7 exitcode=66"
"$dir/tests/node/test_node_shared" >/dev/null
echo "tsan: test_node_shared clean"
for t in node/engines_test integration/publish_all integration/two_versions \
         integration/interior_kill integration/restart_resume; do
  IT_THREADS=2 bash "$root/tests/$t.sh" "$dir" >"$dir/$(basename "$t").out" 2>&1 ||
    { tail -40 "$dir/$(basename "$t").out"; echo "tsan: $t FAILED"; exit 1; }
  echo "tsan: $t (threads = 2) clean"
done
