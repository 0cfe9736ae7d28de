# perf/fanout/daemons.sh — the fdist run of the fan-out benchmark: the real
# daemons, one per namespace, a publish, and the wait for every live node.
# Source it from bash after netns.sh, report.sh and chaos.sh (functions only).
#
#   ft_fdist_run            the whole run (topology already built): configs,
#                           fdsched in the sched namespace, origins o0..oK-1
#                           (o0 the chain head) and nodes n0..nN-1 each in its
#                           own namespace, each listening on port 0 of its own
#                           address and reporting the port it got in a port
#                           file (origins configured by bare id: they learn
#                           each other's addresses from fdsched, which the run
#                           waits for); the source file; publish v1 with
#                           fdadmin (from the sched namespace, whose bridge port
#                           is unshaped, so the origin head's NIC cap is what
#                           the upload meets); poll every node's
#                           <data>/<name>/current until every live node holds
#                           v1; sha256 of every live node's current against
#                           the source; the report. With --delta PCT, then
#                           PCT% of the chunks changed and v2 the same way,
#                           reported on its own. Returns 1 if a live node
#                           missed a version or holds other bytes.
#   ft_daemons_data_remove  removes the run's data dir (from the EXIT trap,
#                           after the namespaces and so the daemons are gone).
#
# Owns: $FT_DATA_DIR/<run prefix>data (keys, configs, logs, every daemon's
# data dir and the source file). Config keys are the ones
# tests/integration/lib.sh writes (it_sched_config, it_node_config), plus
# nic_bps (the node's --rate), window_chunks and pool_buffers (sized to the
# stripes, ft_d_pool_default: pool_buffers x chunk_buf is pinned per node).

FT_RUNDATA=''
FT_D_SCHED_PORT='' # fdsched's port, from its port file
declare -A FT_D_PID=()  # id -> pid (ip netns exec execs the daemon)
declare -A FT_D_PORT=() # id -> the port it reported
FT_NAME=fanout.img
FT_POOL_BUFFERS=${FT_POOL_BUFFERS:-} # empty: ft_d_pool_default, once --stripes is known
FT_WINDOW_CHUNKS=${FT_WINDOW_CHUNKS:-0} # 0: fdnode's default (4 chunks, less if the pool is small)
FT_ORIGIN_POOL_BUFFERS=${FT_ORIGIN_POOL_BUFFERS:-}
FT_ORIGIN_WINDOW_CHUNKS=${FT_ORIGIN_WINDOW_CHUNKS:-$FT_WINDOW_CHUNKS}
FT_HEARTBEAT_MS=${FT_HEARTBEAT_MS:-500}

# ft_d_pool_default STRIPES: each node's pool_buffers unless FT_POOL_BUFFERS
# says: a node takes a stream from each of its STRIPES parents only while
# (parents + 1) x window (4) + fdnode's reserve (12) buffers fit in its pool
# (nd_plane_may_receive), and it forwards to children from the same pool:
# 8 x STRIPES + 16, at least 32 (4 stripes: 48; 8 stripes: 80, fdnode's
# own default). Origins default to the nodes' figure.
ft_d_pool_default() {
  local k=$1 n
  n=$((8 * k + 16))
  [ "$n" -ge 32 ] || n=32
  : "${FT_POOL_BUFFERS:=$n}"
  : "${FT_ORIGIN_POOL_BUFFERS:=$FT_POOL_BUFFERS}"
}

ft_daemons_data_remove() {
  # A failed or interrupted run keeps its daemons' logs (and the sched's
  # config) in $FT_OUT/logs.
  if [ "${1:-0}" -ne 0 ] && [ -n "$FT_RUNDATA" ] && [ -d "$FT_RUNDATA" ] && [ -n "${FT_OUT:-}" ]; then
    mkdir -p "$FT_OUT/logs"
    cp "$FT_RUNDATA"/*.log "$FT_RUNDATA"/*.ini "$FT_OUT/logs/" 2>/dev/null || true
    echo "fanout: daemon logs kept in $FT_OUT/logs" >&2
  fi
  if [ -n "$FT_RUNDATA" ] && [ -d "$FT_RUNDATA" ]; then rm -rf "$FT_RUNDATA"; fi
  FT_RUNDATA=''
}

ft_d_sched_ini() {
  cat <<EOF
[scheduler]
listen = $FT_IP_SCHED:0
port_file = $FT_RUNDATA/sched.port
data_dir = $FT_RUNDATA/sched
cluster_key = $FT_RUNDATA/cluster.key
heartbeat_ms = $FT_HEARTBEAT_MS
stream_loss_is_death = true
stripes = $FT_STRIPES
admin_public_key = $FT_RUNDATA/admin.pub
EOF
}

# ft_d_node_ini ID ROLE REGION ZONE IP MBIT
ft_d_node_ini() {
  cat <<EOF
[node]
id = $1
role = $2
region = $3
zone = $4
listen = $5:0
port_file = $FT_RUNDATA/$1.port
data_dir = $FT_RUNDATA/$1
scheduler = $FT_IP_SCHED:$FT_D_SCHED_PORT
cluster_key_file = $FT_RUNDATA/cluster.key
admin_pub_file = $FT_RUNDATA/admin.pub
heartbeat_ms = $FT_HEARTBEAT_MS
threads = 1
chunk_buf = $FT_CHUNK
pool_buffers = $([ "$2" = origin ] && echo "$FT_ORIGIN_POOL_BUFFERS" || echo "$FT_POOL_BUFFERS")
window_chunks = $([ "$2" = origin ] && echo "$FT_ORIGIN_WINDOW_CHUNKS" || echo "$FT_WINDOW_CHUNKS")
log_level = ${FT_LOG_LEVEL:-info}
EOF
  if [ "$2" != origin ] && [ "${FT_CAP:-0}" -gt 0 ]; then
    echo "upload_bps_max = $((${FT_UPLOAD_CAP:-$FT_CAP} * 1000000))"
    echo "download_bps_max = $((FT_CAP * 1000000))"
  fi
  # nic_bps: fdsched (scheduler/plan.c) sizes upload capacity as
  # floor(nic_bps / stream_bps) child slots with stream_bps fixed at
  # 10 Gbit/s / stripes and no config key for it, so a node that reports
  # its true 200 or 400 Mbit/s gets 0 slots and nothing is ever placed.
  # The rates are therefore reported scaled so --rate maps to 10 Gbit/s:
  # the planner sees the same ratios between nodes and origins as the
  # emulated caps; the caps themselves are the tbf qdiscs.
  # With --cap the caps are real bits/s, so every NIC is reported as it is
  # too (fdsched derives the stream rate from the fleet: plan_build.c).
  if [ "$6" -gt 0 ] && [ "${FT_CAP:-0}" -gt 0 ]; then echo "nic_bps = $(($6 * 1000000))"
  elif [ "$6" -gt 0 ] && [ "$FT_RATE" -gt 0 ]; then echo "nic_bps = $((10000000000 * $6 / FT_RATE))"; fi
  if [ "$2" = origin ]; then # bare ids: the addresses come from fdsched
    local k out=
    for ((k = 0; k < FT_ORIGINS; k++)); do out+="${out:+,}o$k"; done
    echo "origins = $out"
  fi
  return 0
}

# ft_d_start NS ID ARGS...: starts a daemon in NS, log in $FT_RUNDATA/ID.log.
ft_d_start() {
  local ns=$1 id=$2; shift 2
  rm -f "$FT_RUNDATA/$id.port"
  ip netns exec "$ns" "$@" >>"$FT_RUNDATA/$id.log" 2>&1 &
  FT_D_PID[$id]=$!
  echo "$id $!" >>"$FT_RUNDATA/pids"
}

# ft_d_wait_up ID SECONDS: until ID has written its port file (it listens);
# sets FT_D_PORT[ID]. Returns 1, with the end of its log, if the daemon
# exits first or writes none in time.
ft_d_wait_up() {
  local id=$1 until=$((SECONDS + ($2 > 1 ? $2 : 1))) f=$FT_RUNDATA/$1.port port
  while :; do
    if [ -s "$f" ]; then
      port=$(cat "$f")
      if [[ $port =~ ^[1-9][0-9]*$ ]]; then FT_D_PORT[$id]=$port; return 0; fi
    fi
    if ! kill -0 "${FT_D_PID[$id]}" 2>/dev/null || [ $SECONDS -ge $until ]; then
      echo "fanout: $id $(kill -0 "${FT_D_PID[$id]}" 2>/dev/null && echo "wrote no port file in $2 s" || echo "exited at start"); its log:" >&2
      tail -n 20 "$FT_RUNDATA/$id.log" >&2 || true
      return 1
    fi
    sleep 0.05
  done
}

# ft_d_wait_origins SECONDS: every origin is alive with fdsched at the port
# it reported and has learned from fdsched where every other origin listens
# (its log says so); until then its chain would skip the ones it cannot
# place and the publish would land on fewer origins.
ft_d_wait_origins() {
  local until=$((SECONDS + $1)) k j nodes pending
  while :; do
    pending=''
    nodes=$(ft_d_admin nodes --json 2>/dev/null || true)
    for ((k = 0; k < FT_ORIGINS; k++)); do
      grep -q "\"node_id\":\"o$k\",[^}]*\"address\":\"${FT_IP_ORIGIN[k]}:${FT_D_PORT[o$k]}\",\"state\":\"alive\"" <<<"$nodes" ||
        { pending+=" o$k:unregistered"; continue; }
      for ((j = 0; j < FT_ORIGINS; j++)); do
        [ "$j" -ne "$k" ] || continue
        grep -q "origin o$j at ${FT_IP_ORIGIN[j]}:${FT_D_PORT[o$j]} (from fdsched)" "$FT_RUNDATA/o$k.log" ||
          pending+=" o$k:o$j?"
      done
    done
    [ -n "$pending" ] || return 0
    if [ $SECONDS -ge $until ]; then
      echo "fanout: origins not ready after $1 s:$pending" >&2
      return 1
    fi
    sleep 0.1
  done
}

# ft_d_wait_registered SECONDS: until fdsched counts every origin and node
# alive (each has registered and heartbeats), so the publish is planned over
# all of them, however many there are; a fixed sleep was enough for 16.
ft_d_wait_registered() {
  local until=$((SECONDS + $1)) want=$((FT_NODES + FT_ORIGINS)) n=0
  while :; do
    n=$(ft_d_admin nodes --json 2>/dev/null | grep -o '"state":"alive"' | wc -l) || n=0
    [ "$n" -lt "$want" ] || return 0
    if [ $SECONDS -ge $until ]; then
      echo "fanout: fdsched counts $n of $want daemons alive after $1 s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# ft_d_mem_report: each daemon's peak resident memory (VmHWM) and its own
# anonymous memory now (RssAnon), from /proc/<pid>/status, against the
# budget's figure per node; and the lowest MemAvailable the wait loop saw.
ft_d_mem_report() {
  local id pid f
  : >"$FT_TMP/mem"
  while read -r id pid; do
    f=/proc/$pid/status
    [ -r "$f" ] || continue
    awk -v id="$id" '/^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 } END { if (h) print id, h, a }' "$f" >>"$FT_TMP/mem"
  done <"$FT_RUNDATA/pids"
  awk -v lo="${FT_D_MEMAVAIL_MIN:-0}" -v at0="${FT_D_MEMAVAIL0:-0}" '
    { k = ($1 ~ /^n/ ? "nodes" : ($1 ~ /^o/ ? "origins" : $1)); n[k]++; h[k] += $2; a[k] += $3
      if ($2 > hx[k]) hx[k] = $2; if ($3 > ax[k]) ax[k] = $3; sa += $3 }
    END {
      split("nodes origins sched", ks, " ")
      for (i = 1; i <= 3; i++) { k = ks[i]; if (!n[k]) continue
        printf "report: memory %-7s (%d): peak VmHWM mean %.1f max %.1f MiB; RssAnon now mean %.1f max %.1f MiB\n",
               k, n[k], h[k] / n[k] / 1024, hx[k] / 1024, a[k] / n[k] / 1024, ax[k] / 1024 }
      printf "report: memory: the daemons'"'"' RssAnon sums to %.2f GB", sa * 1024 / 1e9
      if (at0 > 0) printf "; MemAvailable %.2f GB before the publish, lowest %.2f GB while it ran (%.2f GB less)", at0 / 1e9, lo / 1e9, (at0 - lo) / 1e9
      printf "\n"
    }' "$FT_TMP/mem"
}

# ft_d_memavail_sample: FT_D_MEMAVAIL_MIN becomes the lowest MemAvailable
# (bytes) seen so far; no fork, so the wait loop can call it every poll.
ft_d_memavail_sample() {
  local k v _
  while read -r k v _; do
    if [ "$k" = MemAvailable: ]; then
      v=$((v * 1024))
      if [ -z "${FT_D_MEMAVAIL_MIN:-}" ] || [ "$v" -lt "$FT_D_MEMAVAIL_MIN" ]; then FT_D_MEMAVAIL_MIN=$v; fi
      return 0
    fi
  done </proc/meminfo
}

ft_d_admin() { # fdadmin from the sched namespace
  ip netns exec "$FT_NS_SCHED" "$FT_BUILD_DIR/admin/fdadmin" \
    --scheduler "$FT_IP_SCHED:$FT_D_SCHED_PORT" --origins "$FT_D_ORIGIN_ADDRS" \
    --cluster-key "$FT_RUNDATA/cluster.key" --admin-key "$FT_RUNDATA/admin.pem" "$@"
}

# ft_d_mutate PATH PCT: overwrites the first 4 KiB of PCT% of the chunks (at
# least one), chosen at random, with fresh random bytes, in place.
ft_d_mutate() {
  local path=$1 pct=$2 n k i
  n=$(((FT_SIZE + FT_CHUNK - 1) / FT_CHUNK))
  k=$((n * pct / 100)); [ "$k" -ge 1 ] || k=1
  for i in $(shuf -i 0-$((n - 1)) -n "$k" --random-source=<(yes "$RANDOM")); do
    head -c 4096 /dev/urandom | dd of="$path" bs=4096 seek=$((i * FT_CHUNK / 4096)) conv=notrunc status=none
  done
  echo "$k $n"
}

# ft_d_version V SHA LABEL: publish the source as version V, wait for every
# live node, verify, report. Sets FT_D_T (T of this version, s).
ft_d_version() {
  local v=$1 sha=$2 label=$3 i rc=0
  local -a killed=() done_at=()
  local src=$FT_RUNDATA/source.img
  echo "fdist: publishing $FT_NAME v$v ($FT_SIZE bytes) from the sched namespace to origin head o0 ${FT_IP_ORIGIN[0]}"
  # The nodes' send stalls before (fdsched's copy of their heartbeats'),
  # so that the run's own are what it adds (stalls.py).
  ft_d_admin nodes --json >"$FT_TMP/nodes0-v$v.json" 2>/dev/null || echo '[]' >"$FT_TMP/nodes0-v$v.json"
  FT_D_MEMAVAIL_MIN=''
  ft_d_memavail_sample
  FT_D_MEMAVAIL0=$FT_D_MEMAVAIL_MIN
  ft_run_begin
  # --kill (v1 only): fdsched orders the nodes while the publish runs (chunks
  # are cut through from the origins as they land), so the transfer spans
  # about S/B from t0: the kills fall in [0.1, 0.9] of that window.
  [ "$v" -gt 1 ] || : >"$FT_TMP/killed" # a node killed in v1 stays dead for v2
  if [ "$v" -eq 1 ] && [ "$FT_KILL" -gt 0 ]; then
    ft_killer_start "$FT_KILL" "$(awk -v s="$FT_SIZE" -v r="$FT_RATE" 'BEGIN { printf "%.3f", s * 8 / (r * 1e6 * 0.956) }')" 0
  fi
  (
    st=0
    ft_d_admin publish "$src" --name "$FT_NAME" --chunk-size "$FT_CHUNK" --no-progress \
      >"$FT_RUNDATA/publish-v$v.log" 2>&1 || st=$?
    awk -v a="$FT_RUN_T0" -v b="$(date +%s.%N)" -v st="$st" 'BEGIN { printf "%.3f %d\n", b - a, st }' >"$FT_TMP/published-v$v"
  ) &
  local pub=$! pubinfo='' n_live n_done last=-1 k
  # Poll: current is the same file as v<V> (test -ef, no fork per node).
  while :; do
    killed=()
    [ -s "$FT_TMP/killed" ] && mapfile -t killed < <(awk '{ print $1 }' "$FT_TMP/killed")
    n_live=0 n_done=0
    for ((i = 0; i < FT_NODES; i++)); do
      for k in "${killed[@]}"; do [ "$k" = "$i" ] && continue 2; done
      n_live=$((n_live + 1))
      if [ -z "${done_at[i]:-}" ] && [ "$FT_RUNDATA/n$i/$FT_NAME/current" -ef "$FT_RUNDATA/n$i/$FT_NAME/v$v" ]; then
        ft_run_done "$i" "$FT_RUNDATA/n$i/$FT_NAME/current"; done_at[i]=1
      fi
      [ -n "${done_at[i]:-}" ] && n_done=$((n_done + 1))
    done
    if [ -z "$pubinfo" ] && [ -s "$FT_TMP/published-v$v" ]; then
      pubinfo=$(cat "$FT_TMP/published-v$v")
      FT_D_CPU_PUB=$(pl_cpu_snap)
      FT_D_DISK_PUB=''
      if [ -n "$FT_RUN_DISKDEV" ]; then FT_D_DISK_PUB=$(pl_disk_snap "$FT_RUN_DISKDEV" || true); fi
      echo "fdist: fdadmin publish returned after ${pubinfo% *} s, exit ${pubinfo#* }"
      if [ "${pubinfo#* }" != 0 ]; then
        echo "fdist: publish failed:" >&2; tail -n 20 "$FT_RUNDATA/publish-v$v.log" >&2; rc=1; break
      fi
    fi
    if [ "$n_done" != "$last" ]; then
      printf 'fdist: %s %d/%d live nodes hold v%d\n' "$(awk -v a="$FT_RUN_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%7.2fs", b - a }')" "$n_done" "$n_live" "$v"
      last=$n_done
    fi
    [ "$n_done" -lt "$n_live" ] || break
    ft_d_memavail_sample
    sleep 0.2
  done
  ft_killer_stop
  ft_run_end
  # The two phases apart: publish (fdadmin until every origin holds it) and
  # fan-out (publish returned to the last live node), so a machine-bound
  # fan-out is not hidden by an idle publish phase.
  if [ -n "${FT_D_CPU_PUB:-}" ]; then
    local ph
    ph=$(awk -v a="$FT_RUN_T0" -v b="$FT_RUN_T1" -v p="${pubinfo% *}" 'BEGIN { printf "%.3f", b - a - p }')
    echo "fdist: phase publish (0 to ${pubinfo% *} s): $(pl_cpu_report "$FT_RUN_CPU0" "$FT_D_CPU_PUB")"
    echo "fdist: phase fan-out (${pubinfo% *} s to the end, $ph s): $(pl_cpu_report "$FT_D_CPU_PUB" "$FT_RUN_CPU1")"
    if [ -n "$FT_D_DISK_PUB" ] && [ -n "$FT_RUN_DISK1" ]; then
      echo "fdist: phase fan-out $(pl_disk_report "$FT_RUN_DISKDEV" "$FT_D_DISK_PUB" "$FT_RUN_DISK1" "$ph")"
    fi
  fi
  FT_D_CPU_PUB=''
  wait "$pub" 2>/dev/null || true
  [ -n "$pubinfo" ] || { [ -s "$FT_TMP/published-v$v" ] && pubinfo=$(cat "$FT_TMP/published-v$v"); }
  mapfile -t killed < <(ft_killed_nodes)
  # fdsched's view, for the record.
  ft_d_admin status "$FT_NAME" >"$FT_OUT/status-v$v.txt" 2>&1 || true
  echo "fdist: fdsched status (fdadmin status $FT_NAME), first lines; all in $FT_OUT/status-v$v.txt:"
  sed -n '1,6p' "$FT_OUT/status-v$v.txt" | sed 's/^/fdist:   /'
  ft_d_stalls "$v" || true
  # Verify every live node's bytes.
  local bad=0 got ok=0
  for ((i = 0; i < FT_NODES; i++)); do
    for k in "${killed[@]}"; do [ "$k" = "$i" ] && continue 2; done
    got=$(sha256sum "$FT_RUNDATA/n$i/$FT_NAME/current" 2>/dev/null | cut -d' ' -f1) || got=-
    if [ "$got" = "$sha" ]; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "fdist: n$i current sha256 ${got:--} != source $sha" >&2; fi
  done
  echo "fdist: sha256 of every live node's current vs the source ($sha): $ok match, $bad differ"
  pl_result_num run.publish_s "${pubinfo% *}"
  pl_result_num run.verified_nodes "$ok"
  pl_result_str run.sha256 "$sha"
  ft_report "$label" "$FT_SIZE" "${killed[@]}" || rc=1
  ft_d_mem_report
  pl_result_num run.mem_available_before_bytes "$FT_D_MEMAVAIL0"
  pl_result_num run.mem_available_min_bytes "$FT_D_MEMAVAIL_MIN"
  pl_result_num run.node_vmhwm_max_bytes "$(awk '$1 ~ /^n/ && $2 > m { m = $2 } END { print m * 1024 }' "$FT_TMP/mem")"
  if [ "${FT_SLOW_N:-0}" -gt 0 ]; then # what fdsched decided about them, and when
    echo "fdist: fdsched's straggler decisions (its log):"
    grep -E 'slow|straggl' "$FT_RUNDATA/sched.log" | sed 's/^/fdist:   /' || echo "fdist:   none"
    grep -H 're-parent' "$FT_RUNDATA"/n*.log | sed "s|^$FT_RUNDATA/|fdist:   |" || true
  fi
  [ "${FT_CAP:-0}" -eq 0 ] || ft_d_cap_report "$v"
  FT_D_T=$(awk -v k=" ${killed[*]} " 'index(k, " " $1 " ") == 0 { if ($2 > m) m = $2 } END { printf "%.3f", m }' "$FT_TMP/done")
  [ "$bad" -eq 0 ] || rc=1
  return "$rc"
}

# ft_d_stalls V: where the run's senders waited, by cause (every node's
# heartbeat carries its cumulative stalls to fdsched; fdadmin nodes --json
# shows them): after three heartbeats, so the last figures have arrived,
# less what they were before the publish (perf/fanout/stalls.py).
ft_d_stalls() {
  local v=$1 line
  sleep "$(awk -v h="$FT_HEARTBEAT_MS" 'BEGIN { printf "%.3f", 3 * h / 1000 }')"
  ft_d_admin nodes --json >"$FT_OUT/nodes-v$v.json" 2>/dev/null || return 1
  python3 "$FT_HERE/stalls.py" "$FT_OUT/nodes-v$v.json" "$FT_TMP/nodes0-v$v.json" >"$FT_TMP/stalls-v$v" || return 1
  sed '/^json:$/,$d' "$FT_TMP/stalls-v$v"
  sed '1,/^json:$/d' "$FT_TMP/stalls-v$v" | while read -r line; do
    pl_result_num "run.${line% *}" "${line#* }"
  done
}

# ft_d_cap_report V: with --cap, each live node's download rate against its
# cap: S over the node's own download time (its log's "vV done in T s",
# from the order to the version complete), so the fan-out's start (the
# publish, the tree filling) is not charged to the cap.
ft_d_cap_report() {
  local v=$1 i t
  : >"$FT_TMP/cap-rates"
  for ((i = 0; i < FT_NODES; i++)); do
    t=$(grep -o "$FT_NAME v$v done in [0-9.]* s" "$FT_RUNDATA/n$i.log" 2>/dev/null | tail -1 | awk '{ print $(NF-1) }')
    [ -n "$t" ] || continue
    echo "n$i $t" >>"$FT_TMP/cap-rates"
  done
  echo "fdist: rate caps: every node capped at $FT_CAP Mbit/s down, ${FT_UPLOAD_CAP:-$FT_CAP} Mbit/s up (NIC $FT_RATE Mbit/s); each node's S / its own download time, against the download cap:"
  awk -v s="$FT_SIZE" -v cap="$FT_CAP" '{
      r = s * 8 / $2 / 1e6; q = r / cap
      printf "fdist:   %-5s %8.3f s  %8.2f Mbit/s  %.3f of the cap\n", $1, $2, r, q
      n++; sum += q; if (n == 1 || q < lo) lo = q; if (q > hi) hi = q
      if (q >= 0.95 && q <= 1.05) within++
    } END {
      if (n) printf "fdist: rate caps: %d nodes, rate/cap min %.3f mean %.3f max %.3f; %d of %d within 5%% of the cap\n", n, lo, sum / n, hi, within, n
    }' "$FT_TMP/cap-rates"
  pl_result_num run.cap_mbit "$FT_CAP"
  pl_result_num run.cap_nodes_within_5pct "$(awk -v s="$FT_SIZE" -v cap="$FT_CAP" '{ q = s * 8 / $2 / 1e6 / cap; if (q >= 0.95 && q <= 1.05) w++ } END { print w + 0 }' "$FT_TMP/cap-rates")"
}

ft_fdist_run() {
  local i k g r z rc=0
  FT_RUNDATA=$FT_DATA_DIR/${FT_PREFIX}data
  mkdir -p "$FT_RUNDATA"
  echo "fdist: data, configs and logs in $FT_RUNDATA (removed at exit)"
  "$FT_BUILD_DIR/admin/fdadmin" keygen "$FT_RUNDATA/admin.pem" "$FT_RUNDATA/admin.pub" \
    --cluster "$FT_RUNDATA/cluster.key" >/dev/null
  mkdir -p "$FT_RUNDATA/sched"
  ft_d_sched_ini >"$FT_RUNDATA/sched.ini"
  ft_d_start "$FT_NS_SCHED" sched "$FT_BUILD_DIR/scheduler/fdsched" --config "$FT_RUNDATA/sched.ini"
  ft_d_wait_up sched 20 || return 1
  FT_D_SCHED_PORT=${FT_D_PORT[sched]}
  for ((k = 0; k < FT_ORIGINS; k++)); do
    # Origin k is labelled region k mod R, zone 0, as tests/integration/lib.sh
    # does (fdsched roots each region's trees at origins it believes are
    # in that region); physically every origin sits in the origin zone.
    ft_d_node_ini "o$k" origin "r$((k % FT_REGIONS))" z0 "${FT_IP_ORIGIN[k]}" "$FT_ORIGIN_RATE" >"$FT_RUNDATA/o$k.ini"
    ft_d_start "${FT_NS_ORIGIN[k]}" "o$k" "$FT_BUILD_DIR/node/fdnode" --config "$FT_RUNDATA/o$k.ini"
  done
  for ((i = 0; i < FT_NODES; i++)); do
    g=${FT_NODE_ZONE[i]}
    read -r r z < <(ft_zone_rz "$g")
    ft_d_node_ini "n$i" node "r$r" "z$z" "${FT_IP_NODE[i]}" "$FT_RATE" >"$FT_RUNDATA/n$i.ini"
    ft_d_start "${FT_NS_NODE[i]}" "n$i" "$FT_BUILD_DIR/node/fdnode" --config "$FT_RUNDATA/n$i.ini"
  done
  # One deadline for all of them, 20 s and a quarter second per daemon: on
  # 2 cores a hundred start-ups (each pins its pool) queue for the CPU.
  local up_until=$((SECONDS + 20 + (FT_NODES + FT_ORIGINS) / 4))
  for ((k = 0; k < FT_ORIGINS; k++)); do ft_d_wait_up "o$k" $((up_until - SECONDS)) || return 1; done
  for ((i = 0; i < FT_NODES; i++)); do ft_d_wait_up "n$i" $((up_until - SECONDS)) || return 1; done
  FT_D_ORIGIN_ADDRS=''
  for ((k = 0; k < FT_ORIGINS; k++)); do FT_D_ORIGIN_ADDRS+="${FT_D_ORIGIN_ADDRS:+,}${FT_IP_ORIGIN[k]}:${FT_D_PORT[o$k]}"; done
  ft_d_wait_origins $((30 + FT_NODES / 10)) || return 1
  echo "fdist: fdsched, $FT_ORIGINS origins and $FT_NODES nodes listen (pool_buffers $FT_POOL_BUFFERS x chunk_buf $FT_CHUNK, window_chunks $FT_WINDOW_CHUNKS; nic_bps reported as 10 Gbit/s for --rate $FT_RATE Mbit/s, see ft_d_node_ini)"
  local t0
  t0=$(date +%s.%N)
  head -c "$FT_SIZE" /dev/urandom >"$FT_RUNDATA/source.img"
  local sha
  sha=$(sha256sum "$FT_RUNDATA/source.img" | cut -d' ' -f1)
  printf 'fdist: source %s bytes written and hashed in %.1f s\n' "$FT_SIZE" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
  ft_d_wait_registered $((10 + FT_NODES / 5)) || return 1
  ft_d_admin nodes >"$FT_OUT/nodes.txt" 2>&1 || true
  local out=$FT_OUT T1
  ft_d_version 1 "$sha" "fdist v1" || rc=1
  T1=$FT_D_T
  pl_result_write "$out/fdist.json"
  echo "fdist: JSON in $out/fdist.json"
  if [ "$FT_DELTA" -gt 0 ] && [ "$rc" -eq 0 ]; then
    local kn
    kn=$(ft_d_mutate "$FT_RUNDATA/source.img" "$FT_DELTA")
    sha=$(sha256sum "$FT_RUNDATA/source.img" | cut -d' ' -f1)
    echo "fdist: --delta $FT_DELTA: changed ${kn% *} of ${kn#* } chunks of the source"
    pl_result_free
    pl_result_init "$FT_TMP"
    pl_machine_result
    pl_result_num run.delta_pct "$FT_DELTA"
    pl_result_num run.delta_chunks_changed "${kn% *}"
    FT_OUT=$out/delta
    mkdir -p "$FT_OUT"
    # (d'): where unchanged chunks are copied (no reflink), the disk's time to
    # copy them in every process is the bound: fio reads and writes that much
    # at once on the same disk, in chunk-sized O_DIRECT blocks (up to 1 GiB
    # measured, the rest at that pace).
    local copy_bound=''
    if [ "$FT_FS" = host ]; then
      local procs=$((FT_NODES - FT_KILL + FT_ORIGINS)) unchanged mib rate
      unchanged=$(((${kn#* } - ${kn% *}) * FT_CHUNK))
      mib=$((procs * unchanged >> 20)); [ "$mib" -le 1024 ] || mib=1024; [ "$mib" -ge 16 ] || mib=16
      if rate=$(pl_disk_copy_ref "$FT_DATA_DIR" "$mib" "$FT_CHUNK" $((procs < 16 ? procs : 16))); then
        copy_bound=$(awk -v p="$procs" -v u="$unchanged" -v r="$rate" 'BEGIN { printf "%.3f", p * u / (r * 1048576) }')
        awk -v p="$procs" -v u="$unchanged" -v r="$rate" -v mib="$mib" -v b="$copy_bound" 'BEGIN {
          printf "fdist: delta copy bound: %d processes x %.1f MB unchanged = %.1f MB read and written; fio (%d MiB each way at once by %d jobs each way, O_DIRECT) copies %.1f MiB/s: %.3f s\n",
                 p, u / 1e6, p * u / 1e6, mib, (p < 16 ? p : 16), r, b }'
        pl_result_num run.delta_copy_mibps "$rate"
        pl_result_num run.delta_copy_bound_s "$copy_bound"
      fi
    fi
    FT_REPORT_NEED_BYTES=$((${kn% *} * FT_CHUNK)) ft_d_version 2 "$sha" "fdist v2 (--delta $FT_DELTA)" || rc=1
    awk -v a="$FT_D_T" -v b="$T1" 'BEGIN { printf "fdist: delta: T_v2 = %.3f s = %.2f%% of T_v1 = %.3f s (target <= 5%%)\n", a, 100 * a / b, b }'
    [ -z "$copy_bound" ] ||
      awk -v a="$FT_D_T" -v b="$copy_bound" 'BEGIN { printf "fdist: delta: T_v2 = %.3f s = %.2f x the disk'"'"'s copy bound %.3f s (target <= 1.2 x)\n", a, a / b, b }'
    pl_result_num run.T_v1_s "$T1"
    pl_result_num run.T_ratio_v2_v1 "$(awk -v a="$FT_D_T" -v b="$T1" 'BEGIN { printf "%.4f", a / b }')"
    pl_result_write "$FT_OUT/delta.json"
    echo "fdist: JSON in $FT_OUT/delta.json"
    FT_OUT=$out
  fi
  # Daemons that died on their own (not killed by --kill) are a failure.
  local id pid
  while read -r id pid; do
    if ! kill -0 "$pid" 2>/dev/null && ! grep -q "^${id#n} " "$FT_TMP/killed" 2>/dev/null; then
      echo "fdist: $id (pid $pid) exited during the run; last log lines:" >&2
      tail -n 10 "$FT_RUNDATA/$id.log" >&2 || true
      rc=1
    fi
  done <"$FT_RUNDATA/pids"
  if [ "$rc" -ne 0 ] || [ -n "${FT_KEEP_LOGS:-}" ]; then
    mkdir -p "$out/logs"; cp "$FT_RUNDATA"/*.log "$out/logs/" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then echo "fdist: FAILED; daemon logs copied to $out/logs" >&2; fi
  fi
  return "$rc"
}
