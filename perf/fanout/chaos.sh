# perf/fanout/chaos.sh — --kill N: nodes killed at random moments mid-transfer.
# Source it from bash after netns.sh and report.sh (functions only).
#
#   ft_killer_start N WINDOW_S [OFFSET_S]
#                                picks N distinct random nodes and, for each, a
#                                random moment OFFSET_S (default 0) + [0.1, 0.9]
#                                x WINDOW_S after t0; at that moment SIGKILLs every process in
#                                the node's namespace and appends
#                                "node seconds_since_t0" to $FT_TMP/killed.
#                                Runs in a background child ($FT_KILLER).
#   ft_killer_stop               stops the child if it is still waiting.
#   ft_killed_nodes              prints the nodes killed so far, one per line.
# Moments are drawn from $RANDOM (seeded from --seed when given, so a run
# can be repeated). Only processes inside the run's own node namespaces are
# signalled, by pid (ip netns pids).

FT_KILLER=''

ft_killer_start() {
  local n=$1 window=$2 offset=${3:-0}
  : >"$FT_TMP/killed"
  [ "$n" -gt 0 ] || return 0
  local -a pool=() picks=() at=()
  local i j r tmp
  for ((i = 0; i < FT_NODES; i++)); do pool+=("$i"); done
  for ((i = FT_NODES - 1; i > 0; i--)); do  # Fisher-Yates
    j=$((RANDOM % (i + 1)))
    tmp=${pool[i]}; pool[i]=${pool[j]}; pool[j]=$tmp
  done
  for ((i = 0; i < n; i++)); do
    picks+=("${pool[i]}")
    r=$RANDOM  # drawn here: bash reseeds RANDOM inside $(...)
    at+=("$(awk -v w="$window" -v o="$offset" -v r="$r" 'BEGIN { printf "%.3f", o + w * (0.1 + 0.8 * r / 32767) }')")
  done
  echo "chaos: will kill $(for ((i = 0; i < n; i++)); do printf 'n%s at %ss ' "${picks[i]}" "${at[i]}"; done)"
  (
    s=''
    trap 'if [ -n "$s" ]; then kill "$s" 2>/dev/null; fi; exit 0' TERM
    local order
    order=$(for ((i = 0; i < n; i++)); do echo "${at[i]} ${picks[i]}"; done | sort -g)
    local t node pids
    while read -r t node; do
      # Wait until t seconds after t0 (the run's start).
      local left
      left=$(awk -v t="$t" -v t0="$FT_RUN_T0" -v now="$(date +%s.%N)" 'BEGIN { d = t0 + t - now; printf "%.3f", (d > 0 ? d : 0) }')
      sleep "$left" & s=$!
      wait "$s"
      pids=$(ip netns pids "${FT_NS_NODE[node]}" 2>/dev/null | tr '\n' ' ')
      # shellcheck disable=SC2086
      if [ -n "${pids// /}" ]; then kill -KILL $pids 2>/dev/null || true; fi
      awk -v n="$node" -v t0="$FT_RUN_T0" -v now="$(date +%s.%N)" 'BEGIN { printf "%d %.3f\n", n, now - t0 }' >>"$FT_TMP/killed"
    done <<<"$order"
  ) &
  FT_KILLER=$!
}

ft_killer_stop() {
  if [ -n "$FT_KILLER" ]; then
    kill -TERM "$FT_KILLER" 2>/dev/null || true
    wait "$FT_KILLER" 2>/dev/null || true
    FT_KILLER=''
  fi
}

ft_killed_nodes() {
  [ -r "$FT_TMP/killed" ] && awk '{ print $1 }' "$FT_TMP/killed"
  return 0
}
