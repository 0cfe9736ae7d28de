# perf/fanout/report.sh — the figures of one fan-out run, from what was measured.
# Source it from bash after netns.sh and perf/lib (functions only).
#
#   ft_run_begin              snapshots CPU, disk and link counters; t0 = now
#   ft_run_done NODE [LINK]   records that node NODE holds the verified version
#                             (at LINK's own mtime: when the node made it)
#                             now (seconds since t0), safe from background jobs
#   ft_run_end                snapshots again
#   ft_report LABEL S_BYTES [KILLED...]
#                             prints T, S/B, (S/B)/T, per-node completion times,
#                             bytes per link class, CPU and disk use with
#                             CPU-seconds per GB delivered; adds them to the
#                             JSON result and writes the nodes-complete-over-time
#                             data and PNG into $FT_OUT. Nodes in KILLED are not
#                             required to complete (one that completed before
#                             it was killed is listed; T is over live nodes
#                             only). Returns 1 if a live node
#                             did not complete.
# With --slow, ft_report_slow NEED_BYTES [KILLED...] (called by ft_report)
# prints each slow node's time against its own bound FACTOR x NEED/B
# (target 1.15 x that) and every other live node's against (NEED/B)/0.88.
# The driver (fdist run, or the iperf3 star baseline) owns t0: it calls
# ft_run_begin right before publishing. Completion records live in $FT_TMP.

ft_now() { date +%s.%N; }

# The fdist daemons' own CPU (fdsched, origins, nodes: the pids in FT_D_PID,
# which ip netns exec became), from utime and stime in /proc/<pid>/stat, in
# clock ticks; bash's `times` cannot see them, they are not waited for
# until the end. ft_daemons_cpu_snap NAME fills the associative array NAME
# with "utime stime" per pid; no fork per daemon.
ft_daemons_cpu_snap() {
  local -n snap=$1
  local p
  local -a f
  snap=()
  [ "${#FT_D_PID[@]}" -gt 0 ] 2>/dev/null || return 0
  for p in "${FT_D_PID[@]}"; do
    if read -r -a f <"/proc/$p/stat" 2>/dev/null; then snap[$p]="${f[13]} ${f[14]}"; fi
  done
}

# ft_daemons_cpu_delta A B: "user_s sys_s daemons" over the daemons alive in
# both snapshots (a daemon --kill took is left out: its ticks are gone).
ft_daemons_cpu_delta() {
  local -n a=$1 b=$2
  local p u=0 s=0 n=0 hz
  hz=$(pl_cpu_hz)
  for p in "${!b[@]}"; do
    [ -n "${a[$p]:-}" ] || continue
    u=$((u + ${b[$p]% *} - ${a[$p]% *})); s=$((s + ${b[$p]#* } - ${a[$p]#* })); n=$((n + 1))
  done
  awk -v u="$u" -v s="$s" -v n="$n" -v hz="$hz" 'BEGIN { printf "%.2f %.2f %d\n", u / hz, s / hz, n }'
}
declare -A FT_RUN_DCPU0=() FT_RUN_DCPU1=()

ft_run_begin() {
  : >"$FT_TMP/done"
  ft_counters_snap >"$FT_TMP/run-counters-0"
  FT_RUN_CPU0=$(pl_cpu_snap)
  FT_RUN_DISKDEV=$(pl_disk_dev "${FT_DISK_DIR:-$FT_DATA_DIR}" 2>/dev/null || true)
  FT_RUN_DISK0=''
  if [ -n "$FT_RUN_DISKDEV" ]; then FT_RUN_DISK0=$(pl_disk_snap "$FT_RUN_DISKDEV" || true); fi
  pl_cpu_self_snap FT_RUN_SELF0
  ft_daemons_cpu_snap FT_RUN_DCPU0
  FT_RUN_T0=$(ft_now)
}

# One line per completion; a single short write with O_APPEND, so lines from
# concurrent background jobs do not interleave.
# With LINK (a node's `current`), the time is the symlink's own mtime: the
# moment the node switched it, not when the 0.2 s poll noticed.
ft_run_done() {
  local now at=''
  now=$(ft_now)
  if [ -n "${2:-}" ]; then at=$(stat -c '%.9Y' "$2" 2>/dev/null || true); fi
  awk -v n="$1" -v t0="$FT_RUN_T0" -v t="$now" -v at="$at" 'BEGIN {
    if (at != "" && at + 0 <= t + 0 && at + 0 >= t0 + 0) t = at
    printf "%d %.3f\n", n, t - t0 }' >>"$FT_TMP/done"
}

ft_run_end() {
  FT_RUN_T1=$(ft_now)
  FT_RUN_CPU1=$(pl_cpu_snap)
  pl_cpu_self_snap FT_RUN_SELF1
  ft_daemons_cpu_snap FT_RUN_DCPU1
  FT_RUN_DISK1=''
  if [ -n "$FT_RUN_DISKDEV" ]; then FT_RUN_DISK1=$(pl_disk_snap "$FT_RUN_DISKDEV" || true); fi
  ft_counters_snap >"$FT_TMP/run-counters-1"
}

ft_report() {
  local label=$1 size=$2; shift 2
  local -a killed=("$@")
  local done=$FT_TMP/done i k is_killed live=0 complete=0 missing=""
  local -A t_of=()
  local n t
  while read -r n t; do t_of[$n]=$t; done <"$done"
  for ((i = 0; i < FT_NODES; i++)); do
    is_killed=0
    for k in "${killed[@]}"; do if [ "$k" = "$i" ]; then is_killed=1; fi; done
    if [ "$is_killed" -eq 1 ]; then continue; fi
    live=$((live + 1))
    if [ -n "${t_of[$i]:-}" ]; then complete=$((complete + 1)); else missing="$missing n$i"; fi
  done
  local wall
  wall=$(awk -v a="$FT_RUN_T0" -v b="$FT_RUN_T1" 'BEGIN { printf "%.3f", b - a }')
  # T: publish to the last live node complete (the wall time if one never did).
  local T
  T=$(awk -v w="$wall" -v k=" ${killed[*]} " 'index(k, " " $1 " ") == 0 { if ($2 > m) m = $2; c++ }
        END { printf "%.3f", (c ? m : w) }' "$done")
  if [ -n "$missing" ]; then T=$wall; fi
  # The bound is the bytes every node must receive through its NIC: S for a
  # first version, only the changed chunks (FT_REPORT_NEED_BYTES) for a delta.
  local bound eff need=${FT_REPORT_NEED_BYTES:-$size} what="S/B" e="S/B"
  if [ "$need" != "$size" ]; then what="C/B (C = $need bytes of changed chunks each node must receive)" e="C/B"; fi
  bound=$(awk -v s="$need" -v r="$FT_RATE" 'BEGIN { printf "%.3f", (r > 0 ? s * 8 / (r * 1e6) : 0) }')
  eff=$(awk -v b="$bound" -v t="$T" 'BEGIN { printf "%.3f", (t > 0 ? b / t : 0) }')
  echo "report: $label"
  if [ -n "$missing" ]; then
    # T is only the wall time of a run that never finished: no efficiency.
    eff=0
    printf 'report: T = none: live nodes never completed (wall %s s), S = %s bytes, B = %s Mbit/s\n' "$wall" "$size" "$FT_RATE"
    printf 'report: lower bound %s = %s s, efficiency (%s)/T = none (reported as 0 in JSON)\n' "$what" "$bound" "$e"
  else
    printf 'report: T = %s s (publish to every live node complete), S = %s bytes, B = %s Mbit/s\n' "$T" "$size" "$FT_RATE"
    printf 'report: lower bound %s = %s s, efficiency (%s)/T = %s\n' "$what" "$bound" "$e" "$eff"
  fi
  printf 'report: %d of %d live nodes complete%s%s\n' "$complete" "$live" \
    "${missing:+; NOT complete:$missing}" "${killed[*]:+; killed:$(printf ' n%s' "${killed[@]}")}"
  sort -k2,2g "$done" | awk '{ t[NR] = $2; printf "%s n%s %.3f", (NR == 1 ? "report: per node (s):" : ","), $1, $2 }
    END { if (NR) printf "\nreport: completion min %.3f s, median %.3f s, max %.3f s\n", t[1], t[int((NR + 1) / 2)], t[NR] }'
  [ "${FT_SLOW_N:-0}" -eq 0 ] || ft_report_slow "$need" "${killed[@]}"
  local cls bytes line=""
  while read -r cls bytes; do
    line="$line $cls $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')"
    pl_result_num "run.link_bytes.$cls" "$bytes"
  done < <(ft_counters_delta "$FT_TMP/run-counters-0" "$FT_TMP/run-counters-1")
  echo "report: link MB (bytes sent on each link of the class, both directions):$line"
  local delivered cpu_line
  delivered=$(awk -v s="$size" -v c="$complete" 'BEGIN { printf "%.0f", s * c }')
  cpu_line=$(pl_cpu_report "$FT_RUN_CPU0" "$FT_RUN_CPU1" "$delivered")
  echo "report: whole machine $cpu_line (per GB delivered to nodes: $(awk -v d="$delivered" 'BEGIN { printf "%.2f", d / 1e9 }') GB)"
  local cpu user sys busy own_user own_sys
  cpu=$(pl_cpu_delta "$FT_RUN_CPU0" "$FT_RUN_CPU1")
  read -r user sys _ _ _ _ busy <<<"$cpu"
  read -r own_user own_sys <<<"$(pl_cpu_self_delta "$FT_RUN_SELF0" "$FT_RUN_SELF1")"
  awk -v u="$own_user" -v s="$own_sys" -v d="$delivered" 'BEGIN {
    printf "report: this run'"'"'s own processes (waited-for children): %.2f user-s + %.2f sys-s", u, s
    if (d > 0) printf ", %.2f CPU-s per GB", (u + s) / (d / 1e9)
    printf " (the rest of the machine'"'"'s use is other work and kernel softirq time)\n"
  }'
  local d_user d_sys d_n
  read -r d_user d_sys d_n <<<"$(ft_daemons_cpu_delta FT_RUN_DCPU0 FT_RUN_DCPU1)"
  if [ "$d_n" -gt 0 ]; then
    awk -v u="$d_user" -v s="$d_sys" -v n="$d_n" -v d="$delivered" -v busy="$busy" -v T="$wall" -v c="$(nproc)" 'BEGIN {
      printf "report: fdist daemons (%d: fdsched, origins, nodes; /proc/<pid>/stat): %.2f user-s + %.2f sys-s", n, u, s
      if (d > 0) printf ", %.2f CPU-s per GB", (u + s) / (d / 1e9)
      if (T > 0) printf ", %.0f%% of the machine over the run (the machine: %.0f%% busy)", 100 * (u + s) / (T * c), 100 * busy
      printf "\n"
    }'
    pl_result_num run.daemons_cpu_user_s "$d_user"
    pl_result_num run.daemons_cpu_sys_s "$d_sys"
  fi
  if [ -n "$FT_RUN_DISK0" ] && [ -n "$FT_RUN_DISK1" ]; then
    echo "report: $(pl_disk_report "$FT_RUN_DISKDEV" "$FT_RUN_DISK0" "$FT_RUN_DISK1" "$wall")"
  fi
  # JSON
  pl_result_str run.label "$label"
  pl_result_num run.size_bytes "$size"
  pl_result_num run.T_s "$T"
  pl_result_num run.bound_s "$bound"
  pl_result_num run.bound_bytes "$need"
  pl_result_num run.efficiency "$eff"
  pl_result_num run.live_nodes "$live"
  pl_result_num run.complete_nodes "$complete"
  pl_result_num run.wall_s "$wall"
  pl_result_num run.cpu_user_s "$user"
  pl_result_num run.cpu_sys_s "$sys"
  pl_result_num run.cpu_busy_frac "$busy"
  pl_result_num run.own_cpu_user_s "$own_user"
  pl_result_num run.own_cpu_sys_s "$own_sys"
  pl_result_num run.cpu_s_per_gb "$(awk -v u="$user" -v s="$sys" -v d="$delivered" 'BEGIN { printf "%.3f", (d > 0 ? (u + s) / (d / 1e9) : 0) }')"
  for k in "${killed[@]}"; do pl_result_num "run.killed[]" "$k"; done
  if [ -s "$FT_TMP/killed" ]; then
    echo "report: killed (node, seconds since publish): $(awk '{ printf "%sn%s %.3f", (NR > 1 ? ", " : ""), $1, $2 }' "$FT_TMP/killed")"
  fi
  for ((i = 0; i < FT_NODES; i++)); do pl_result_num "run.nodes[$i].node" "$i"; done
  while read -r n t; do pl_result_num "run.nodes[$n].complete_s" "$t"; done <"$done"
  if [ -s "$FT_TMP/killed" ]; then
    while read -r n t; do pl_result_num "run.nodes[$n].killed_s" "$t"; done <"$FT_TMP/killed"
  fi
  # nodes complete over time: (0,0), then one step per completion
  sort -k2,2g "$done" | awk 'BEGIN { print "# seconds_since_publish nodes_complete"; print 0, 0 } { print $2, NR }' \
    >"$FT_OUT/complete.dat"
  if pl_plot_complete "$FT_OUT/complete.dat" "$FT_OUT/complete.png" \
       "$label: $live nodes, $(awk -v s="$size" 'BEGIN { printf "%.3g GB", s / 1e9 }'), $FT_RATE Mbit/s" "$live" "$bound"; then
    echo "report: plot $FT_OUT/complete.png, data $FT_OUT/complete.dat"
  fi
  [ -z "$missing" ]
}

ft_report_slow() {
  local need=$1; shift
  local i k slow_list="" others="" t
  local -A t_of=()
  while read -r i t; do t_of[$i]=$t; done <"$FT_TMP/done"
  for ((i = 0; i < FT_NODES; i++)); do
    for k in "$@"; do [ "$k" = "$i" ] && continue 2; done
    t=${t_of[$i]:-none}
    if [ "${FT_SLOW[i]}" -eq 1 ]; then slow_list+=" n$i=$t"; else others+=" n$i=$t"; fi
  done
  awk -v need="$need" -v r="$FT_RATE" -v f="$FT_SLOW_FACTOR" -v kb="$FT_SLOW_KBIT" \
      -v slow="$slow_list" -v others="$others" 'BEGIN {
    sb = need * 8 / (r * 1e6); own = f * sb; ob = sb / 0.88
    n = split(slow, a, " "); met = 0; worst = 0
    printf "report: slow nodes (NIC %g Mbit/s both ways, --slow %d:%d): bound %d x S/B = %.3f s each, target 1.15 x = %.3f s\n", kb / 1000, n, f, f, own, 1.15 * own
    for (i = 1; i <= n; i++) {
      split(a[i], p, "=")
      if (p[2] == "none") { printf "report:   %s did not complete\n", p[1]; continue }
      q = p[2] / own; if (q > worst) worst = q; if (q <= 1.15) met++
      printf "report:   %s %.3f s = %.3f x its bound (%s)\n", p[1], p[2], q, (q <= 1.15 ? "met" : "MISSED")
    }
    printf "report: slow nodes: %d of %d within 1.15 x their bound (worst %.3f x)\n", met, n, worst
    m = split(others, b, " "); om = 0; omax = 0; line = ""
    for (i = 1; i <= m; i++) {
      split(b[i], p, "=")
      if (p[2] == "none") { line = line " " p[1] " none"; continue }
      if (p[2] + 0 > omax) omax = p[2] + 0; if (p[2] + 0 <= ob) om++
      line = line sprintf(" %s %.3f", p[1], p[2])
    }
    printf "report: other nodes against (S/B)/0.88 = %.3f s:%s\n", ob, line
    printf "report: other nodes: %d of %d within (S/B)/0.88 (slowest %.3f s = %.3f x S/B)\n", om, m, omax, omax / sb
  }'
  for ((i = 0; i < FT_NODES; i++)); do
    if [ "${FT_SLOW[i]}" -eq 1 ]; then pl_result_num "run.slow_nodes[]" "$i"; fi
  done
  pl_result_num run.slow_factor "$FT_SLOW_FACTOR"
}
