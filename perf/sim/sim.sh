#!/usr/bin/env bash
# sim.sh — flow-level fan-out simulation over the real planner: T, efficiency
# (S/B)/T and bytes per link class for the planned trees, the same with 1% of
# nodes dying mid-transfer, and a chain and a star for reference.
# usage: perf/sim/sim.sh [--build DIR] [--quick] [fdsim options]   (--help for all)
#   --quick   1,000 nodes and 1 GB instead of 10,000 nodes and 10 GB
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
if [[ ${1:-} == --build ]]; then build=$2; shift 2; fi
if [[ ${1:-} == --help || ${1:-} == -h ]]; then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  echo
  [[ -x $build/perf/sim/fdsim ]] && "$build/perf/sim/fdsim" --help
  exit 0
fi
quick=()
if [[ ${1:-} == --quick ]]; then quick=(--nodes 1000 --size 1000000000); shift; fi
[[ -x $build/perf/sim/fdsim ]] || "$root/scripts/build.sh" release >/dev/null
echo "machine: $(uname -n), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$build/perf/sim/fdsim" "${quick[@]}" "$@"
