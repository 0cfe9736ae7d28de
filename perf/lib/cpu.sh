# perf/lib/cpu.sh — whole-machine CPU use from /proc/stat.
# Source it from bash; functions only.
#   pl_cpu_snap                 prints one snapshot (the "cpu" line's counters)
#   pl_cpu_delta START END      prints "user_s sys_s idle_s iowait_s steal_s wall_cpu_s busy_frac"
#   pl_cpu_sample SECONDS       snapshot, sleep, snapshot, print the delta line
#   pl_cpu_report START END [BYTES]  one human line; with BYTES also CPU-s per GB (10^9)
# user_s counts user+nice, sys_s counts system+irq+softirq, in CPU-seconds of
# the whole machine (all cores), so "CPU-seconds per GB delivered" is
# (user_s + sys_s) / (bytes / 1e9). Guest time is already inside user.
#   pl_cpu_self_snap VAR        sets VAR to "user_s sys_s" used so far by this shell and
#                               its waited-for descendants (bash `times`): a
#                               run's own share, without the other work on the
#                               machine. Processes still running (or never
#                               waited for) are not in it yet; kernel work done
#                               in softirq context is charged to whatever ran.
#   pl_cpu_self_delta A B       prints "user_s sys_s" between two self snapshots

pl_cpu_hz() {
  getconf CLK_TCK 2>/dev/null || echo 100
}

pl_cpu_snap() {
  awk '$1 == "cpu" { print $2, $3, $4, $5, $6, $7, $8, $9; exit }' /proc/stat
}

pl_cpu_delta() {
  awk -v a="$1" -v b="$2" -v hz="$(pl_cpu_hz)" 'BEGIN {
    n = split(a, x, " "); m = split(b, y, " ")
    if (n < 8 || m < 8) { print "pl_cpu_delta: bad snapshot" > "/dev/stderr"; exit 1 }
    for (i = 1; i <= 8; i++) d[i] = (y[i] - x[i]) / hz
    user = d[1] + d[2]; sys = d[3] + d[6] + d[7]; idle = d[4]; iow = d[5]; steal = d[8]
    total = user + sys + idle + iow + steal
    printf "%.2f %.2f %.2f %.2f %.2f %.2f %.3f\n", user, sys, idle, iow, steal, total,
           (total > 0 ? (user + sys) / total : 0)
  }'
}

pl_cpu_sample() {
  local a b
  a=$(pl_cpu_snap); sleep "$1"; b=$(pl_cpu_snap)
  pl_cpu_delta "$a" "$b"
}

pl_cpu_report() {
  local d
  d=$(pl_cpu_delta "$1" "$2") || return 1
  awk -v d="$d" -v bytes="${3:-0}" -v cores="$(nproc)" 'BEGIN {
    split(d, v, " ")
    printf "cpu: %.2f user-s + %.2f sys-s (iowait %.2f s, steal %.2f s) over %.2f core-s on %d cores = %.0f%% busy",
           v[1], v[2], v[4], v[5], v[6], cores, v[7] * 100
    if (bytes > 0) printf ", %.2f CPU-s per GB", (v[1] + v[2]) / (bytes / 1e9)
    printf "\n"
  }'
}

# `times` must run in the calling shell itself (in a $(...) subshell it
# would report the subshell), so the result goes into the variable named $1.
pl_cpu_self_snap() {
  local f=${TMPDIR:-/tmp}/pl-times.$$.$RANDOM
  times >"$f"
  printf -v "$1" '%s' "$(awk '{ for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t[i] += p[1] * 60 + p[2] } }
                               END { printf "%.3f %.3f", t[1], t[2] }' "$f")"
  rm -f "$f"
}

pl_cpu_self_delta() {
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f %.2f\n", y[1] - x[1], y[2] - x[2] }'
}
