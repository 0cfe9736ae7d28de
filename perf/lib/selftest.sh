#!/usr/bin/env bash
# perf/lib/selftest.sh — checks the benchmark helpers against known inputs.
# No root, no network; writes only to a temp dir it removes. Exit 0 when
# every check passes, 1 otherwise, 77 when a needed tool is missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PL_LIB_DIR=$here
for f in machine cpu result plot disk; do
  # shellcheck source=/dev/null
  . "$here/$f.sh"
done
for tool in python3 gnuplot awk; do
  command -v "$tool" >/dev/null || { echo "selftest: $tool missing, skipped"; exit 77; }
done
tmp=$(mktemp -d /tmp/pl-selftest.XXXXXX)
trap 'rm -rf "$tmp"; pl_result_free' EXIT
fails=0
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

# machine
check "machine: describes cpu, cores, memory, kernel" \
  bash -c ". '$here/machine.sh'; pl_machine_describe /tmp | grep -q 'cores' && pl_machine_describe /tmp | grep -q \"kernel \$(uname -r)\""
check "machine: memory matches /proc/meminfo" \
  test "$(pl_machine_mem_bytes)" = "$(awk '/^MemTotal:/ { printf "%.0f", $2 * 1024 }' /proc/meminfo)"

# cpu: a delta of known counters (hz 100): user+nice 150 ticks, sys+irq+softirq 60, idle 790
d=$(pl_cpu_delta "100 0 100 1000 0 0 0 0" "200 50 150 1790 0 5 5 0")
check "cpu: delta of known counters" test "$d" = "1.50 0.60 7.90 0.00 0.00 10.00 0.210"
check "cpu: report prints CPU-s per GB" \
  bash -c ". '$here/cpu.sh'; pl_cpu_report '100 0 100 1000 0 0 0 0' '200 50 150 1790 0 5 5 0' 2100000000 | grep -q '1.00 CPU-s per GB'"
pl_cpu_self_snap s0
( for ((i = 0; i < 200000; i++)); do :; done )
pl_cpu_self_snap s1
check "cpu: own CPU grows after a busy child" \
  awk -v d="$(pl_cpu_self_delta "$s0" "$s1")" 'BEGIN { split(d, v, " "); exit !(v[1] + v[2] > 0) }'

# result: nested keys, arrays, types, and rejection of junk
pl_result_init
pl_result_str a.b "x \"y\""
pl_result_num a.n 12.5
pl_result_num l[] 1
pl_result_num l[] 2
pl_result_num o[1].k 3
pl_result_bool t true
pl_result_write "$tmp/r.json"
check "result: JSON round trip" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d == {"a": {"b": "x \"y\"", "n": 12.5}, "l": [1, 2], "o": [None, {"k": 3}], "t": True}, d
' "$tmp/r.json"
pl_result_num bad not-a-number
check "result: a non-number is rejected" bash -c "! python3 '$here/result_json.py' '$PL_RESULT_TSV' '$tmp/bad.json' 2>/dev/null"
check "result: nothing written on rejection" test ! -e "$tmp/bad.json"

# plot: a PNG from unsorted two-column data
printf '# t n\n3.5 2\n0 0\n2.0 1\n4.1 3\n' >"$tmp/c.dat"
pl_plot_complete "$tmp/c.dat" "$tmp/c.png" "selftest" 3 1.5
check "plot: writes a PNG" bash -c "[ \"\$(head -c 8 '$tmp/c.png' | od -An -tx1 | tr -d ' \n')\" = 89504e470d0a1a0a ]"
printf '# only a comment\n' >"$tmp/empty.dat"
check "plot: refuses a file without data" bash -c ". '$here/plot.sh'; ! pl_plot_complete '$tmp/empty.dat' '$tmp/e.png' 2>/dev/null"

# disk
if dev=$(pl_disk_dev /tmp 2>/dev/null); then
  check "disk: snapshot of the device holding /tmp" bash -c ". '$here/disk.sh'; pl_disk_snap '$dev' | grep -Eq '^[0-9]+ [0-9]+ [0-9]+$'"
else
  echo "skip disk: /tmp is not on a block device"
fi
check "disk: report of known counters" \
  test "$(pl_disk_report vda '0 0 0' '2000000 4000000 500' 1)" = "disk vda: 2.0 MB read, 4.0 MB written, busy 50% of 1.0 s"

echo "selftest: $fails failure(s)"
[ "$fails" -eq 0 ]
