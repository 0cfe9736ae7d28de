#!/usr/bin/env bash
# Configures and builds one flavour of fdist.
# usage: build.sh [release|sanitize|fuzz]   (default release)
# Prints the build directory on stdout's last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-release}
jobs=$(nproc)
case "$flavour" in
  release)  dir=$root/build;          args=(-DCMAKE_BUILD_TYPE=Release) ;;
  sanitize) dir=$root/build-sanitize; args=(-DCMAKE_BUILD_TYPE=Debug -DFDIST_SANITIZE=ON) ;;
  fuzz)     dir=$root/build-fuzz;     args=(-DCMAKE_BUILD_TYPE=Debug -DFDIST_FUZZ=ON
                                            -DCMAKE_C_COMPILER=clang) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, sanitize, fuzz)" >&2; exit 2 ;;
esac
cmake -S "$root" -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j "$jobs" >&2
echo "$dir"
