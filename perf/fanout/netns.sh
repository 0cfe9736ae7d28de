# perf/fanout/netns.sh — the emulated network of the fan-out benchmark.
# Source it from bash (functions only); fanout.sh is its one user.
#
# Owns: every network namespace whose name starts with the run prefix
# ($FT_PREFIX, "fdfan-<pid>-<rand>-"), and everything inside them: veth
# pairs, bridges, addresses, routes, tbf/htb qdiscs. It never creates or
# changes anything in the namespace it was started from (the host's own
# interfaces, routes and sysctls stay untouched): every veth is created
# with both ends already inside run namespaces (`ip -n A link add ... peer
# ... netns B`), so deleting the namespaces deletes every object.
#
# Shape (R regions x Z zones, N nodes dealt round-robin over the zones):
#
#   core ──── r0 ──── r0z0 [br0] ── n0, n4, ...      (node NIC: --rate)
#    │  \      └───── r0z1 [br0] ── n1, n5, ...
#    │   \── r1 ───── r1z0 [br0] ── n2, n6, ...      (zone link: --zone-link-rate)
#    │         └───── r1z1 [br0] ── n3, n7, ...      (region link: --region-link-rate)
#    └── oz [br0] ── sched, o0, o1, o2               (origin NIC: --origin-rate,
#                                                     origin link: --origin-link-rate)
#
# Every router namespace (core, rR, rRzZ, oz) forwards IPv4. Addresses are
# only inside 198.18.0.0/15 (RFC 2544 benchmark range):
#   198.18.0.0/24       origin zone: .1 gateway, .2 fdsched, .10+k origin k
#   198.18.(g+1).0/24   zone g = r*Z + z: .1 gateway (br0), .2+j the j-th node of the zone
#   198.19.0.0/30       core .1 <-> oz .2
#   198.19.1.(4r)/30    core .4r+1 <-> region r .4r+2
#   198.19.(2+r).(4z)/30  region r .4z+1 <-> zone (r,z) .4z+2
# Limits that follow: R*Z <= 254, R <= 63, Z <= 63, nodes per zone <= 253.
#
# Shaping: a cap is egress shaping on BOTH ends of a veth, so it holds in
# both directions: node eth0 (upload) and its bridge port (download); zone
# uplink and the region's downlink; region uplink and the core's downlink.
# A rate of 0 means unshaped. tbf by default, htb with --qdisc htb. A node
# --slow picked gets --rate / FACTOR on both ends of its veth instead.

# shellcheck disable=SC2034 # used by fanout.sh, which sources this file
FT_NS_GLOBAL_PREFIX=fdfan-

# ---- plan: pure computation, no root needed -------------------------------

# Fills the address plan from FT_NODES FT_REGIONS FT_ZONES FT_ORIGINS.
ft_plan() {
  local zones=$((FT_REGIONS * FT_ZONES))
  if [ "$FT_REGIONS" -lt 1 ] || [ "$FT_REGIONS" -gt 63 ]; then
    echo "fanout: --regions must be 1..63" >&2; return 2
  fi
  if [ "$FT_ZONES" -lt 1 ] || [ "$FT_ZONES" -gt 63 ] || [ "$zones" -gt 254 ]; then
    echo "fanout: --zones must be 1..63 with regions*zones <= 254" >&2; return 2
  fi
  if [ "$FT_NODES" -lt 1 ] || [ $(((FT_NODES + zones - 1) / zones)) -gt 253 ]; then
    echo "fanout: --nodes must be >= 1 and at most 253 per zone" >&2; return 2
  fi
  if [ "$FT_ORIGINS" -lt 0 ] || [ "$FT_ORIGINS" -gt 200 ]; then
    echo "fanout: --origins must be 0..200" >&2; return 2
  fi
  FT_NS_CORE=${FT_PREFIX}core
  FT_NS_OZ=${FT_PREFIX}oz
  FT_NS_SCHED=${FT_PREFIX}sched
  FT_IP_SCHED=198.18.0.2
  FT_NS_REGION=() FT_NS_ZONE=() FT_NS_NODE=() FT_IP_NODE=() FT_NODE_ZONE=()
  FT_NS_ORIGIN=() FT_IP_ORIGIN=()
  local r z g i k
  for ((r = 0; r < FT_REGIONS; r++)); do
    FT_NS_REGION[r]=${FT_PREFIX}r$r
    for ((z = 0; z < FT_ZONES; z++)); do
      g=$((r * FT_ZONES + z))
      FT_NS_ZONE[g]=${FT_PREFIX}r${r}z$z
    done
  done
  for ((i = 0; i < FT_NODES; i++)); do
    g=$((i % zones))
    FT_NS_NODE[i]=${FT_PREFIX}n$i
    FT_NODE_ZONE[i]=$g
    FT_IP_NODE[i]=198.18.$((g + 1)).$((2 + i / zones))
  done
  for ((k = 0; k < FT_ORIGINS; k++)); do
    FT_NS_ORIGIN[k]=${FT_PREFIX}o$k
    FT_IP_ORIGIN[k]=198.18.0.$((10 + k))
  done
  ft_slow_pick
}

# --slow N:FACTOR: FT_SLOW[i] is 1 for the N nodes picked (a Fisher-Yates
# shuffle drawn from $RANDOM, so --seed repeats the choice; nothing is drawn
# without --slow, so --kill's choices for a seed stay what they were), and
# FT_SLOW_KBIT their NIC rate, --rate / FACTOR.
ft_slow_pick() {
  FT_SLOW=() FT_SLOW_KBIT=0
  local -a pool=()
  local i j tmp
  for ((i = 0; i < FT_NODES; i++)); do FT_SLOW[i]=0; pool+=("$i"); done
  [ "${FT_SLOW_N:-0}" -gt 0 ] || return 0
  for ((i = FT_NODES - 1; i > 0; i--)); do
    j=$((RANDOM % (i + 1)))
    tmp=${pool[i]}; pool[i]=${pool[j]}; pool[j]=$tmp
  done
  for ((i = 0; i < FT_SLOW_N; i++)); do FT_SLOW[pool[i]]=1; done
  FT_SLOW_KBIT=$((FT_RATE * 1000 / FT_SLOW_FACTOR))
}

# The NIC rate of node i in kbit/s (0: unshaped).
ft_node_kbit() {
  if [ "${FT_SLOW[$1]:-0}" -eq 1 ]; then echo "$FT_SLOW_KBIT"; else echo $((FT_RATE * 1000)); fi
}

# Region and zone of zone index g, as "r z".
ft_zone_rz() { echo "$(($1 / FT_ZONES)) $(($1 % FT_ZONES))"; }

# Human-readable map of the plan.
ft_plan_print() {
  local g r z i k
  printf 'topology: %d regions x %d zones, %d nodes, %d origins, prefix %s\n' \
    "$FT_REGIONS" "$FT_ZONES" "$FT_NODES" "$FT_ORIGINS" "$FT_PREFIX"
  printf 'topology: caps (Mbit/s, 0 = unshaped, %s, both directions): node %s, zone link %s, region link %s, origin %s, origin link %s\n' \
    "$FT_QDISC" "$FT_RATE" "$FT_ZONE_LINK_RATE" "$FT_REGION_LINK_RATE" "$FT_ORIGIN_RATE" "$FT_ORIGIN_LINK_RATE"
  printf 'topology:   origin zone 198.18.0.0/24: fdsched %s' "$FT_IP_SCHED"
  for ((k = 0; k < FT_ORIGINS; k++)); do printf ', o%d %s' "$k" "${FT_IP_ORIGIN[k]}"; done
  printf '\n'
  for ((g = 0; g < FT_REGIONS * FT_ZONES; g++)); do
    read -r r z < <(ft_zone_rz "$g")
    printf 'topology:   region %d zone %d 198.18.%d.0/24:' "$r" "$z" $((g + 1))
    for ((i = g; i < FT_NODES; i += FT_REGIONS * FT_ZONES)); do
      printf ' n%d=%s' "$i" "${FT_IP_NODE[i]}"
      if [ "${FT_SLOW[i]:-0}" -eq 1 ]; then printf '(slow)'; fi
    done
    printf '\n'
  done
  if [ "${FT_SLOW_N:-0}" -gt 0 ]; then
    printf 'topology: --slow %d:%d: NIC of' "$FT_SLOW_N" "$FT_SLOW_FACTOR"
    for ((i = 0; i < FT_NODES; i++)); do
      if [ "${FT_SLOW[i]}" -eq 1 ]; then printf ' n%d' "$i"; fi
    done
    printf ' capped at %s Mbit/s (--rate / %d), both directions\n' \
      "$(awk -v k="$FT_SLOW_KBIT" 'BEGIN { printf "%g", k / 1000 }')" "$FT_SLOW_FACTOR"
  fi
}

# ---- build -----------------------------------------------------------------

# Egress cap on one interface inside one namespace: ft_shape NS DEV MBIT.
ft_shape() { ft_shape_kbit "$1" "$2" $(($3 * 1000)); }

# The same in kbit/s (a --slow node's NIC is --rate / FACTOR).
ft_shape_kbit() {
  local ns=$1 dev=$2 kbit=$3
  [ "$kbit" -gt 0 ] || return 0
  # burst: 2 ms at line rate, at least 100 kB so a 64 KiB GSO packet passes
  # whole; limit: 20 ms of queue. Short bursts therefore add < 0.1% to a
  # 3 s measurement.
  local burst=$((kbit * 1000 / 8 / 500))
  [ "$burst" -ge 100000 ] || burst=100000
  case "$FT_QDISC" in
    tbf)
      tc -n "$ns" qdisc replace dev "$dev" root tbf rate "${kbit}kbit" burst "$burst" latency 20ms
      ;;
    htb)
      tc -n "$ns" qdisc replace dev "$dev" root handle 1: htb default 1
      tc -n "$ns" class replace dev "$dev" parent 1: classid 1:1 htb \
        rate "${kbit}kbit" ceil "${kbit}kbit" burst "$burst" cburst "$burst" quantum 60000
      ;;
    *) echo "fanout: unknown qdisc $FT_QDISC" >&2; return 2 ;;
  esac
}

ft_ns_add() {
  ip netns add "$1"
  ip -n "$1" link set lo up
}

ft_router() {
  ip netns exec "$1" sysctl -q -w net.ipv4.ip_forward=1
}

# Point-to-point link: ft_p2p NS_A DEV_A ADDR_A NS_B DEV_B ADDR_B MBIT
ft_p2p() {
  ip -n "$1" link add "$2" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$4" addr add "$6" dev "$5"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
  ft_shape "$1" "$2" "$7"
  ft_shape "$4" "$5" "$7"
}

# A host on a zone bridge: ft_host NS ADDR/24 GW ZONE_NS PORT MBIT [KBIT]
# (KBIT, when given, is the NIC's rate instead of MBIT).
ft_host() {
  ft_ns_add "$1"
  ip -n "$1" link add eth0 type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$2" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" route add default via "$3"
  ip -n "$4" link set "$5" master br0
  ip -n "$4" link set "$5" up
  local kbit=${7:-$(($6 * 1000))}
  ft_shape_kbit "$1" eth0 "$kbit"
  ft_shape_kbit "$4" "$5" "$kbit"
}

ft_bridge() {
  ip -n "$1" link add br0 type bridge
  ip -n "$1" addr add "$2" dev br0
  ip -n "$1" link set br0 up
}

# Creates the whole topology of the plan. Any failing command aborts the
# caller (set -e); its EXIT trap then removes what exists.
ft_topo_build() {
  local r z g i k
  ft_ns_add "$FT_NS_CORE"; ft_router "$FT_NS_CORE"
  # origin zone
  ft_ns_add "$FT_NS_OZ"; ft_router "$FT_NS_OZ"
  ft_bridge "$FT_NS_OZ" 198.18.0.1/24
  ft_p2p "$FT_NS_CORE" oz 198.19.0.1/30 "$FT_NS_OZ" uplink 198.19.0.2/30 "$FT_ORIGIN_LINK_RATE"
  ip -n "$FT_NS_OZ" route add default via 198.19.0.1
  ip -n "$FT_NS_CORE" route add 198.18.0.0/24 via 198.19.0.2
  ft_host "$FT_NS_SCHED" "$FT_IP_SCHED/24" 198.18.0.1 "$FT_NS_OZ" sched 0
  for ((k = 0; k < FT_ORIGINS; k++)); do
    ft_host "${FT_NS_ORIGIN[k]}" "${FT_IP_ORIGIN[k]}/24" 198.18.0.1 "$FT_NS_OZ" "o$k" "$FT_ORIGIN_RATE"
  done
  # regions and zones
  for ((r = 0; r < FT_REGIONS; r++)); do
    local rns=${FT_NS_REGION[r]}
    ft_ns_add "$rns"; ft_router "$rns"
    ft_p2p "$FT_NS_CORE" "r$r" "198.19.1.$((4 * r + 1))/30" "$rns" uplink "198.19.1.$((4 * r + 2))/30" "$FT_REGION_LINK_RATE"
    ip -n "$rns" route add default via "198.19.1.$((4 * r + 1))"
    for ((z = 0; z < FT_ZONES; z++)); do
      g=$((r * FT_ZONES + z))
      local zns=${FT_NS_ZONE[g]}
      ft_ns_add "$zns"; ft_router "$zns"
      ft_bridge "$zns" "198.18.$((g + 1)).1/24"
      ft_p2p "$rns" "z$z" "198.19.$((2 + r)).$((4 * z + 1))/30" "$zns" uplink "198.19.$((2 + r)).$((4 * z + 2))/30" "$FT_ZONE_LINK_RATE"
      ip -n "$zns" route add default via "198.19.$((2 + r)).$((4 * z + 1))"
      ip -n "$rns" route add "198.18.$((g + 1)).0/24" via "198.19.$((2 + r)).$((4 * z + 2))"
      ip -n "$FT_NS_CORE" route add "198.18.$((g + 1)).0/24" via "198.19.1.$((4 * r + 2))"
    done
  done
  # nodes
  for ((i = 0; i < FT_NODES; i++)); do
    g=${FT_NODE_ZONE[i]}
    ft_host "${FT_NS_NODE[i]}" "${FT_IP_NODE[i]}/24" "198.18.$((g + 1)).1" "${FT_NS_ZONE[g]}" "n$i" "$FT_RATE" \
      "$(ft_node_kbit "$i")"
  done
}

# Names of the host namespaces (sched, origins, nodes) and their addresses,
# one "ns ip" per line.
ft_hosts() {
  local i
  echo "$FT_NS_SCHED $FT_IP_SCHED"
  for ((i = 0; i < FT_ORIGINS; i++)); do echo "${FT_NS_ORIGIN[i]} ${FT_IP_ORIGIN[i]}"; done
  for ((i = 0; i < FT_NODES; i++)); do echo "${FT_NS_NODE[i]} ${FT_IP_NODE[i]}"; done
}

# ---- teardown --------------------------------------------------------------

# Namespaces whose name starts with $1.
ft_ns_list() {
  ip netns list 2>/dev/null | awk -v p="$1" 'index($1, p) == 1 { print $1 }'
}

# Stops every process inside the namespaces starting with $1 (they were all
# started by a run with that prefix), then deletes the namespaces. Deleting
# a namespace deletes its veths (and so their peers), bridges and qdiscs.
# Prints how many namespaces it removed; returns 1 if any remain.
ft_ns_remove_prefix() {
  local prefix=$1 ns p pids n=0 tries alive=
  local -a all
  mapfile -t all < <(ft_ns_list "$prefix")
  [ ${#all[@]} -gt 0 ] || { echo 0; return 0; }
  pids=$(for ns in "${all[@]}"; do ip netns pids "$ns" 2>/dev/null; done | sort -u | tr '\n' ' ')
  if [ -n "${pids// /}" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for ((tries = 0; tries < 20; tries++)); do
      alive=
      for p in $pids; do
        if kill -0 "$p" 2>/dev/null; then alive=1; fi
      done
      if [ -z "$alive" ]; then break; fi
      sleep 0.1
    done
    # shellcheck disable=SC2086
    if [ -n "$alive" ]; then kill -KILL $pids 2>/dev/null || true; fi
  fi
  for ns in "${all[@]}"; do
    if ip netns del "$ns" 2>/dev/null; then n=$((n + 1)); fi
  done
  echo "$n"
  [ -z "$(ft_ns_list "$prefix")" ]
}

# ---- bytes per link class ----------------------------------------------------
# Link classes, counted as bytes sent on each end of each veth of the class
# (a byte that crosses two zone links counts twice, once per link):
#   node_up      node eth0 -> its zone bridge       (what nodes upload)
#   node_down    zone bridge port -> node eth0      (what nodes download)
#   origin_up    origin eth0 -> origin bridge
#   origin_down  origin bridge port -> origin eth0
#   zone_link    zone <-> region, both directions
#   region_link  region <-> core, both directions
#   origin_link  origin zone <-> core, both directions
# ft_counters_snap prints "class bytes" lines; ft_counters_delta A B prints
# the difference of two snapshots in the same format, classes in the order
# above.

# "ifname tx_bytes" for every interface of namespace $1.
ft_ns_tx() {
  ip netns exec "$1" sh -c 'for f in /sys/class/net/*/statistics/tx_bytes; do
    d=${f#/sys/class/net/}; echo "${d%%/*} $(cat "$f")"; done'
}

ft_counters_snap() {
  local i k r g
  for ((i = 0; i < FT_NODES; i++)); do
    ft_ns_tx "${FT_NS_NODE[i]}" | awk '$1 == "eth0" { print "node_up", $2 }'
  done
  for ((k = 0; k < FT_ORIGINS; k++)); do
    ft_ns_tx "${FT_NS_ORIGIN[k]}" | awk '$1 == "eth0" { print "origin_up", $2 }'
  done
  for ((g = 0; g < FT_REGIONS * FT_ZONES; g++)); do
    ft_ns_tx "${FT_NS_ZONE[g]}" | awk '$1 ~ /^n[0-9]+$/ { print "node_down", $2 }
                                       $1 == "uplink" { print "zone_link", $2 }'
  done
  for ((r = 0; r < FT_REGIONS; r++)); do
    ft_ns_tx "${FT_NS_REGION[r]}" | awk '$1 ~ /^z[0-9]+$/ { print "zone_link", $2 }
                                         $1 == "uplink" { print "region_link", $2 }'
  done
  ft_ns_tx "$FT_NS_CORE" | awk '$1 ~ /^r[0-9]+$/ { print "region_link", $2 }
                                $1 == "oz" { print "origin_link", $2 }'
  ft_ns_tx "$FT_NS_OZ" | awk '$1 ~ /^o[0-9]+$/ { print "origin_down", $2 }
                              $1 == "uplink" { print "origin_link", $2 }'
}

ft_counters_delta() {
  awk 'NR == FNR { a[$1] += $2; next } { b[$1] += $2 }
       END {
         n = split("node_up node_down origin_up origin_down zone_link region_link origin_link", c, " ")
         for (i = 1; i <= n; i++) printf "%s %.0f\n", c[i], b[c[i]] - a[c[i]]
       }' "$1" "$2"
}
