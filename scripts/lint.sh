#!/usr/bin/env bash
# clang-tidy (with the build's compile_commands.json) and cppcheck over the
# project's own sources. Advisory: exits non-zero when either reports.
# usage: lint.sh BUILD_DIR
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cd "$root"
mapfile -t sources < <(git ls-files '*.c' 2>/dev/null || find . -name '*.c' -not -path './build*')
rc=0
echo "== clang-tidy (${#sources[@]} files)"
clang-tidy -p "$build" --quiet "${sources[@]}" 2>/dev/null || rc=1
echo "== cppcheck"
cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
  --std=c11 --error-exitcode=1 -I common -D_GNU_SOURCE \
  --suppress=missingIncludeSystem "${sources[@]}" || rc=1
exit $rc
