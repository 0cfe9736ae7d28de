#!/usr/bin/env bash
# bench_fdsched.sh — heartbeats per second handled by the real fdsched daemon
# over loopback, with the library's in-process figure (bench_sched) beside it.
# usage: perf/sched/bench_fdsched.sh [--build DIR] [bench_fdsched options]   (--help for all)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
if [[ ${1:-} == --build ]]; then build=$2; shift 2; fi
if [[ ${1:-} == --help || ${1:-} == -h ]]; then
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
  echo
  [[ -x $build/perf/sched/bench_fdsched ]] && "$build/perf/sched/bench_fdsched" --help
  exit 0
fi
[[ -x $build/perf/sched/bench_fdsched && -x $build/scheduler/fdsched ]] ||
  "$root/scripts/build.sh" release >/dev/null
echo "machine: $(uname -n), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews these figures)"
echo "== reference: the library alone, in-process, one core (bench_sched) =="
"$build/perf/sched/bench_sched" --rounds 3 --hb-seconds 2 | grep -E '^heartbeats'
echo "== the daemon over loopback (client and daemon share the machine's cores) =="
"$build/perf/sched/bench_fdsched" --fdsched "$build/scheduler/fdsched" "$@"
