#!/usr/bin/env bash
# bench.sh — scheduler benchmarks: plan build and one re-parent for N nodes (ms),
# heartbeats per second on one core. Builds the release tree if needed.
# usage: perf/sched/bench.sh [--build DIR] [bench_sched options]   (--help for all)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
if [[ ${1:-} == --build ]]; then build=$2; shift 2; fi
if [[ ${1:-} == --help || ${1:-} == -h ]]; then
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
  echo
  [[ -x $build/perf/sched/bench_sched ]] && "$build/perf/sched/bench_sched" --help
  exit 0
fi
[[ -x $build/perf/sched/bench_sched ]] || "$root/scripts/build.sh" release >/dev/null
echo "machine: $(uname -n), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews these figures)"
cpu=${FD_BENCH_CPU:-0}
if command -v taskset >/dev/null; then
  exec taskset -c "$cpu" "$build/perf/sched/bench_sched" "$@"
fi
exec "$build/perf/sched/bench_sched" "$@"
