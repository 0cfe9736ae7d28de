# perf/fanout/validate.sh — proves the emulated network is what it claims.
# Source it from bash after netns.sh and perf/lib (functions only); it
# needs a built topology. ft_validate runs, in this order:
#   1. reachability: every host namespace (fdsched, origins, nodes) sends an
#      ICMP echo to every host address (reach.py) — proves the routes;
#   2. the loopback reference: iperf3 over lo inside a node namespace,
#      unshaped — what this machine's TCP stack does right now;
#   3. one TCP flow in the same zone, across zones, across regions, each
#      against the cap of its path (the smallest cap it crosses);
#   4. many-to-one and one-to-many inside one zone: the node NIC cap holds
#      for the sum of flows, in both directions;
#   5. ring capacity: every node sends to the next node of its zone at once,
#      so whether this machine can carry every NIC at full rate shows.
# Each measurement also prints the bytes each link class carried (from the
# veth counters), which shows the flows took the links they should.
# Each measurement is iperf3 -t FT_VAL_SECONDS after a 1 s omitted ramp-up,
# wrapped in timeout(1); it prints measured/cap with the machine's CPU use
# over the same interval (other work on the machine shows there).
# Verdict per line: "ok" when 0.85 <= ratio <= 1.02; a ratio above 1.02
# means a cap is not enforced, below 0.85 that something else (usually the
# CPU, see the busy figure) limits the flow. ft_validate returns 1 if any
# check fails. All iperf3 processes it starts are its children, run inside
# run namespaces, and are waited for (or killed by the namespace teardown).

FT_VAL_PORT=5201

# Cap in Mbit/s of the path between nodes i and j (0 = unshaped).
ft_min_cap() {
  local m=0 c
  for c in "$@"; do
    if [ "$c" -gt 0 ] && { [ "$m" -eq 0 ] || [ "$c" -lt "$m" ]; }; then m=$c; fi
  done
  echo "$m"
}

ft_path_cap() {
  local gi=${FT_NODE_ZONE[$1]} gj=${FT_NODE_ZONE[$2]}
  if [ "$gi" -eq "$gj" ]; then
    ft_min_cap "$FT_RATE"
  elif [ $((gi / FT_ZONES)) -eq $((gj / FT_ZONES)) ]; then
    ft_min_cap "$FT_RATE" "$FT_ZONE_LINK_RATE"
  else
    ft_min_cap "$FT_RATE" "$FT_ZONE_LINK_RATE" "$FT_REGION_LINK_RATE"
  fi
}

# Waits until something listens on TCP port $3 at $2 inside namespace $1.
ft_wait_listen() {
  local tries
  for ((tries = 0; tries < 50; tries++)); do
    if ip netns exec "$1" ss -Hltn "sport = :$3" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.05
  done
  echo "fanout: no iperf3 server on $2:$3 in $1" >&2
  return 1
}

# Prints "bits_per_second retransmits" from an iperf3 -J client output.
ft_iperf_parse() {
  python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    e = d["end"]
    print("%.0f %d" % (e["sum_received"]["bits_per_second"], e["sum_sent"].get("retransmits", 0)))
except Exception as ex:
    sys.stderr.write("fanout: cannot read iperf3 result %s: %s\n" % (sys.argv[1], ex))
    sys.exit(1)
' "$1"
}

# ft_measure NAME CAP_MBIT FLOW...   with FLOW = "client_ns server_ns server_ip label"
# All flows run at the same time; the measured rate is their sum.
# Appends one line to the report and one entry to the JSON result.
# FT_MEASURE_KIND=capacity: a ratio below 0.85 is reported as a machine
# limit, not a failure. FT_MEASURE_LABEL replaces the list of flow labels.
FT_VAL_FAILS=0
FT_VAL_INDEX=0
FT_MEASURE_KIND=check
FT_MEASURE_LABEL=''
ft_measure() {
  local name=$1 cap=$2; shift 2
  local -a cpids=() spids=() outs=()
  local flow cns sns sip label port=$FT_VAL_PORT labels="" k=0 self0 self1
  for flow in "$@"; do
    read -r cns sns sip label <<<"$flow"
    timeout $((FT_VAL_SECONDS + 20)) ip netns exec "$sns" iperf3 -s -1 -B "$sip" -p "$port" >/dev/null 2>&1 &
    spids+=($!)
    ft_wait_listen "$sns" "$sip" "$port"
    port=$((port + 1))
  done
  local c0 c1 t0 t1 snap0=$FT_TMP/counters-$FT_VAL_INDEX-0 snap1=$FT_TMP/counters-$FT_VAL_INDEX-1
  ft_counters_snap >"$snap0"
  # One window for both CPU figures: from the clients' start to the servers'
  # end (processes count in "own" once waited for).
  pl_cpu_self_snap self0
  c0=$(pl_cpu_snap); t0=$(date +%s.%N)
  port=$FT_VAL_PORT
  for flow in "$@"; do
    read -r cns sns sip label <<<"$flow"
    outs[k]=$FT_TMP/iperf-$FT_VAL_INDEX-$k.json
    timeout $((FT_VAL_SECONDS + 15)) ip netns exec "$cns" \
      iperf3 -c "$sip" -p "$port" -t "$FT_VAL_SECONDS" -O 1 -J >"${outs[k]}" 2>&1 &
    cpids[k]=$!
    labels="$labels${labels:+, }$label"
    port=$((port + 1)); k=$((k + 1))
  done
  if [ -n "$FT_MEASURE_LABEL" ]; then labels=$FT_MEASURE_LABEL; fi
  local rc=0 p
  for p in "${cpids[@]}"; do wait "$p" || rc=1; done
  t1=$(date +%s.%N)
  for p in "${spids[@]}"; do wait "$p" || true; done  # one-shot servers end with their test
  c1=$(pl_cpu_snap)
  pl_cpu_self_snap self1
  ft_counters_snap >"$snap1"
  local bps=0 retr=0 line b r
  for ((k = 0; k < ${#outs[@]}; k++)); do
    if ! line=$(ft_iperf_parse "${outs[k]}"); then rc=1; continue; fi
    read -r b r <<<"$line"
    bps=$((bps + b)); retr=$((retr + r))
  done
  local cpu j="measurements[$FT_VAL_INDEX]"
  cpu=$(pl_cpu_delta "$c0" "$c1")
  local verdict ratio mbit
  mbit=$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 1e6 }')
  if [ "$cap" -gt 0 ]; then
    ratio=$(awk -v b="$bps" -v c="$cap" 'BEGIN { printf "%.3f", b / (c * 1e6) }')
    if [ "$rc" -ne 0 ]; then verdict=FAIL
    elif awk -v r="$ratio" 'BEGIN { exit !(r > 1.02) }'; then verdict="FAIL (cap not enforced)"
    elif [ "$FT_MEASURE_KIND" = capacity ]; then
      if awk -v r="$ratio" 'BEGIN { exit !(r < 0.85) }'; then verdict="capacity: machine-limited"
      else verdict="capacity: ok"; fi
    elif awk -v r="$ratio" 'BEGIN { exit !(r < 0.85) }'; then verdict="LOW (see cpu busy)"
    else verdict=ok; fi
    printf 'validate: %-14s %-34s cap %5s Mbit/s  measured %8s Mbit/s  ratio %s  retrans %-5s %s  %s\n' \
      "$name" "$labels" "$cap" "$mbit" "$ratio" "$retr" \
      "$(awk -v d="$cpu" -v o="$(pl_cpu_self_delta "$self0" "$self1")" 'BEGIN { split(d, v, " "); split(o, w, " "); printf "machine %3.0f%% busy (%.1f user-s, %.1f sys-s), own %.1f CPU-s", v[7] * 100, v[1], v[2], w[1] + w[2] }')" \
      "$verdict"
  else
    ratio=0
    if [ "$rc" -ne 0 ]; then verdict=FAIL; else verdict=reference; fi
    printf 'validate: %-14s %-34s unshaped     measured %8s Mbit/s  (%s x the node cap)  retrans %-5s %s  %s\n' \
      "$name" "$labels" "$mbit" "$(awk -v b="$bps" -v c="$FT_RATE" 'BEGIN { if (c > 0) printf "%.1f", b / (c * 1e6); else print "-" }')" "$retr" \
      "$(awk -v d="$cpu" -v o="$(pl_cpu_self_delta "$self0" "$self1")" 'BEGIN { split(d, v, " "); split(o, w, " "); printf "machine %3.0f%% busy (%.1f user-s, %.1f sys-s), own %.1f CPU-s", v[7] * 100, v[1], v[2], w[1] + w[2] }')" \
      "$verdict"
  fi
  # Bytes per link class over the measurement (the iperf3 bytes, their ACKs
  # and the 1 s omitted ramp-up): shows which links the flows really crossed.
  local cls bytes summary=""
  while read -r cls bytes; do
    pl_result_num "$j.link_bytes.$cls" "$bytes"
    if [ "$bytes" -ge 1000000 ]; then
      summary="$summary $cls $(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }')"
    fi
  done < <(ft_counters_delta "$snap0" "$snap1")
  echo "validate:   link MB:${summary:- (none over 1 MB)}"
  case "$verdict" in ok|reference|capacity*) ;; *) FT_VAL_FAILS=$((FT_VAL_FAILS + 1)) ;; esac
  pl_result_str "$j.name" "$name"
  pl_result_str "$j.flows" "$labels"
  pl_result_num "$j.flow_count" "$#"
  pl_result_num "$j.cap_mbit" "$cap"
  pl_result_num "$j.measured_bps" "$bps"
  pl_result_num "$j.ratio" "$ratio"
  pl_result_num "$j.retransmits" "$retr"
  pl_result_str "$j.verdict" "$verdict"
  read -r b r _ _ _ _ p <<<"$cpu"
  pl_result_num "$j.cpu_user_s" "$b"
  pl_result_num "$j.cpu_sys_s" "$r"
  pl_result_num "$j.cpu_busy_frac" "$p"
  read -r b r <<<"$(pl_cpu_self_delta "$self0" "$self1")"
  pl_result_num "$j.own_cpu_user_s" "$b"
  pl_result_num "$j.own_cpu_sys_s" "$r"
  pl_result_num "$j.wall_s" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
  FT_VAL_INDEX=$((FT_VAL_INDEX + 1))
}

ft_validate_reach() {
  local -a hosts=() ips=()
  local ns ip bad=0 pairs=0 miss t0 t1
  while read -r ns ip; do hosts+=("$ns"); ips+=("$ip"); done < <(ft_hosts)
  t0=$(date +%s.%N)
  for ns in "${hosts[@]}"; do
    if ! miss=$(ip netns exec "$ns" python3 "$FT_HERE/reach.py" "${ips[@]}"); then
      bad=$((bad + $(wc -w <<<"$miss")))
      echo "validate: reach FAIL from ${ns#"$FT_PREFIX"}: no answer from $miss" | tr '\n' ' '
      echo
    fi
    pairs=$((pairs + ${#ips[@]}))
  done
  t1=$(date +%s.%N)
  printf 'validate: reachability   %d host namespaces x %d addresses = %d pairs, %d unreachable (%.1f s)  %s\n' \
    "${#hosts[@]}" "${#ips[@]}" "$pairs" "$bad" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$([ "$bad" -eq 0 ] && echo ok || echo FAIL)"
  pl_result_num reachability.pairs "$pairs"
  pl_result_num reachability.unreachable "$bad"
  if [ "$bad" -ne 0 ]; then FT_VAL_FAILS=$((FT_VAL_FAILS + 1)); fi
}

# Nodes of zone g, in order, on stdout (space separated).
ft_zone_nodes() {
  local i out=""
  for ((i = $1; i < FT_NODES; i += FT_REGIONS * FT_ZONES)); do out="$out $i"; done
  echo "${out# }"
}

ft_validate() {
  local zones=$((FT_REGIONS * FT_ZONES)) g k
  local -a z0
  read -r -a z0 <<<"$(ft_zone_nodes 0)"
  local n="${FT_NS_NODE[0]}"
  ft_validate_reach
  ft_measure loopback 0 "$n $n 127.0.0.1 n0->n0(lo)"
  if [ ${#z0[@]} -ge 2 ]; then
    local b=${z0[1]}
    ft_measure same-zone "$(ft_path_cap 0 "$b")" "$n ${FT_NS_NODE[b]} ${FT_IP_NODE[b]} n0->n$b"
  else
    echo "validate: same-zone skipped: zone 0 has one node (need --nodes > regions*zones)"
  fi
  if [ "$FT_ZONES" -ge 2 ] && [ "$FT_NODES" -ge 2 ]; then
    ft_measure cross-zone "$(ft_path_cap 0 1)" "$n ${FT_NS_NODE[1]} ${FT_IP_NODE[1]} n0->n1"
  else
    echo "validate: cross-zone skipped: need --zones >= 2 and --nodes >= 2"
  fi
  if [ "$FT_REGIONS" -ge 2 ] && [ "$FT_NODES" -gt "$FT_ZONES" ]; then
    local c=$FT_ZONES
    ft_measure cross-region "$(ft_path_cap 0 "$c")" "$n ${FT_NS_NODE[c]} ${FT_IP_NODE[c]} n0->n$c"
  else
    echo "validate: cross-region skipped: need --regions >= 2 and --nodes > zones"
  fi
  if [ ${#z0[@]} -ge 3 ]; then
    local -a in_flows=() out_flows=()
    local o
    for ((k = 1; k < ${#z0[@]} && k <= 3; k++)); do
      o=${z0[k]}
      in_flows+=("${FT_NS_NODE[o]} $n ${FT_IP_NODE[0]} n$o->n0")
      out_flows+=("$n ${FT_NS_NODE[o]} ${FT_IP_NODE[o]} n0->n$o")
    done
    # The senders (receivers) each have a full NIC of their own, so the
    # only cap the sum can hit is n0's download (upload) NIC.
    ft_measure many-to-one "$(ft_min_cap "$FT_RATE")" "${in_flows[@]}"
    ft_measure one-to-many "$(ft_min_cap "$FT_RATE")" "${out_flows[@]}"
  else
    echo "validate: many-to-one/one-to-many skipped: zone 0 needs >= 3 nodes (--nodes >= $((2 * zones + 1)))"
  fi
  # Capacity: every node uploads to the next node of its zone and downloads
  # from the previous one, all at once — each NIC busy in both directions,
  # as in a fan-out. Its ratio says whether this machine can emulate the
  # whole network at full rate; below 0.85 the machine, not the caps, limits.
  local -a ring=() zn
  for ((g = 0; g < zones; g++)); do
    read -r -a zn <<<"$(ft_zone_nodes "$g")"
    [ ${#zn[@]} -ge 2 ] || continue
    for ((k = 0; k < ${#zn[@]}; k++)); do
      local a=${zn[k]} b=${zn[(k + 1) % ${#zn[@]}]}
      ring+=("${FT_NS_NODE[a]} ${FT_NS_NODE[b]} ${FT_IP_NODE[b]} n$a->n$b")
    done
  done
  if [ ${#ring[@]} -ge 2 ]; then
    FT_MEASURE_KIND=capacity FT_MEASURE_LABEL="${#ring[@]} flows, zone rings"
    ft_measure ring-capacity $((${#ring[@]} * $(ft_min_cap "$FT_RATE"))) "${ring[@]}"
    FT_MEASURE_KIND=check FT_MEASURE_LABEL=''
  fi
  pl_result_num validation.failures "$FT_VAL_FAILS"
  [ "$FT_VAL_FAILS" -eq 0 ]
}
