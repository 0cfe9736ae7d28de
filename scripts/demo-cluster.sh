#!/usr/bin/env bash
# demo-cluster.sh — the fdist local-cluster demo (called by scripts/demo.sh
# with the build dir as $1 and the user's flags after it).
#
# Starts on loopback fdsched, 3 origins and 12 nodes in 2 regions x 2 zones
# (every process, port file, config, key, log and data dir under one temp
# dir; every daemon listens on port 0 and reports its port in a port file),
# generates a file, publishes it with a live view, checks every node's
# `current` with sha256sum against the source, changes 1% of the chunks,
# publishes again and shows the bytes that crossed the network, has five
# writers change the file through the origin head (appends and an overwrite,
# each acknowledged once every origin holds it) while the head is SIGKILLed
# mid-run (a 3-server ZooKeeper ensemble elects another origin; the writers'
# library sends what was in flight to it; the dead head is restarted and
# rejoins as a follower), bumps it into v3 and checks every node against a
# model of the acknowledged changes, prints a summary, and stops everything
# it started — also on Ctrl-C or an error. The control plane runs on
# ZooKeeper as in production: two fdsched (a leader and a standby) and the
# origins' head election (--no-zookeeper: one fdsched, a static chain).
#
# Bytes per link class are measured from outside the processes: a sampler
# reads every TCP connection's kernel counters (ss -tinp: bytes_acked and
# bytes_received) every 50 ms, and each connection is attributed to the two
# processes at its ends by port and pid, then classed by their regions and
# zones. A connection that closes between two samples loses what it carried
# after the last one, so these are lower bounds; the nodes' own count of
# chunks fetched (from their logs) is printed beside them. Loopback has no
# link rate, so efficiency is (S/B)/T with B the rate the fastest node
# reached in the same run: T_first / T_all, 1.0 when every node finishes as
# soon as the first (perf/fanout uses the same (S/B)/T with the NIC rate).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<EOF
usage: demo-cluster.sh BUILD_DIR [--size-mib N] [--chunk SIZE] [--origins N]
                       [--regions N] [--zones N] [--nodes-per-zone N]
                       [--change-pct P] [--time-limit S] [--no-zookeeper] [--keep]
  --size-mib N        size of the generated file (default 1024 = 1 GiB)
  --chunk SIZE        chunk size, power of two 64K..64M (default 4M)
  --origins N         origin group size (default 3)
  --regions N         regions (default 2)
  --zones N           zones per region (default 2)
  --nodes-per-zone N  nodes in each zone (default 3: 12 nodes)
  --change-pct P      percent of chunks changed for the second publish (default 1)
  --time-limit S      stop everything after S seconds (default 1800)
  --no-zookeeper      no ZooKeeper: one fdsched, the static origin chain, no failover
  --keep              keep the temp dir (logs, data) afterwards
Everything runs on 127.0.0.1 under one temp dir; Ctrl-C stops it all.
EOF
}

build=${1:-}
case "$build" in -h | --help | "") usage; [ -n "$build" ]; exit $? ;; esac
shift
size_mib=1024 chunk=4M origins=3 regions=2 zones=2 per=3 change=1 limit=1800 zk=true
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mib) size_mib=$2; shift ;;
    --chunk) chunk=$2; shift ;;
    --origins) origins=$2; shift ;;
    --regions) regions=$2; shift ;;
    --zones) zones=$2; shift ;;
    --nodes-per-zone) per=$2; shift ;;
    --change-pct) change=$2; shift ;;
    --time-limit) limit=$2; shift ;;
    --keep) export IT_KEEP=1 ;;
    --no-zookeeper) zk=false ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo-cluster.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for v in size_mib origins regions zones per change limit; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || { echo "demo-cluster.sh: --${v//_/-} must be a positive integer" >&2; exit 2; }
done

. "$root/tests/integration/lib.sh" "$build"
it_require_cluster
IT_CHUNK=$chunk
IT_HEARTBEAT_MS=500
# The write path: bumps only when the demo asks; a lone origin holds alone.
IT_ORIGIN_INI=$'bump_changes = 0\nbump_bytes = 0\nbump_interval_s = 0'
[ "$origins" -ge 2 ] || IT_ORIGIN_INI+=$'\nmin_durable_origins = 1'
[ "$origins" -ge 2 ] || zk=false # a failover needs another origin
it_init demo "$limit"
tty=false
[ -t 1 ] && tty=true
say() { printf '\n== %s\n' "$*"; }
if $zk; then
  say "starting a 3-server ZooKeeper ensemble (Debian's zookeeper package)"
  it_zk_start 3
  IT_ORIGIN_INI+=$'\n'"zookeeper = $IT_ZK"$'\nzookeeper_session_ms = 2000'
fi

# ---- cluster ----
say "starting fdsched, $origins origins and $((regions * zones * per)) nodes on loopback ($regions regions x $zones zones) in $IT_DIR"
it_cluster "$origins" "$regions" "$zones" "$per"
nodes=${#IT_NODES[@]}

# ---- the link-byte sampler ----
( while :; do
    echo "@"
    ss -Htinp state established 2>/dev/null || true
    sleep 0.05
  done ) >"$IT_DIR/ss.samples" &
IT_PID[sampler]=$!

link_bytes() { # link_bytes OUT: bytes so far per link class, one "class bytes" per line
  python3 - "$IT_DIR" >"$1" <<'PY'
import re, sys
d = sys.argv[1]
roster = {}   # port -> (id, region, zone)
for line in open(f"{d}/roster"):
    i, role, region, zone, port = line.split()
    roster[int(port)] = (i, region, zone)
ids = {v[0]: v for v in roster.values()}
pid2id = {}
for line in open(f"{d}/pids"):
    i, pid = line.split()
    pid2id[int(pid)] = i
socks = {}    # (lport, pport) -> dict(pid, acked, received); last sample wins
cur = None
addr = re.compile(r"127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:(\d+)")
for line in open(f"{d}/ss.samples", errors="replace"):
    if line.startswith("@"):
        continue
    if not line[:1].isspace():
        m = addr.search(line)
        cur = None
        if m:
            pid = re.search(r"pid=(\d+)", line)
            cur = (int(m.group(1)), int(m.group(2)))
            socks[cur] = dict(pid=int(pid.group(1)) if pid else 0, acked=0, received=0)
        continue
    if cur:
        for k, key in (("bytes_acked", "acked"), ("bytes_received", "received")):
            m = re.search(k + r":(\d+)", line)
            if m:
                socks[cur][key] = int(m.group(1))
classes = {}
for (lport, pport), s in socks.items():
    if lport not in roster:
        continue                          # only the server end of each connection
    server = roster[lport]
    client_end = socks.get((pport, lport))
    client = pid2id.get(client_end["pid"]) if client_end else None
    n = s["acked"] + s["received"]
    if server[0] == "sched" or client == "sched":
        c = "control (fdsched)"
    elif client is None:
        c = "fdadmin -> origin head"
    else:
        a, b = server, ids[client]
        if a[1] != b[1]:
            c = "cross-region"
        elif a[2] != b[2]:
            c = "cross-zone"
        else:
            c = "intra-zone"
    classes[c] = classes.get(c, 0) + n
for c in ("fdadmin -> origin head", "intra-zone", "cross-zone", "cross-region", "control (fdsched)"):
    print(f"{c.replace(' ', '_')} {classes.get(c, 0)}")
PY
}

# ---- one publish, watched until every node holds it ----
# publish_and_watch FILE V: sets pub_s, fanout_s, first_s, total_s
publish_and_watch() {
  local file=$1 t0
  t0=$(date +%s.%N)
  if $tty; then
    it_admin publish "$file" --name demo.img --chunk-size "$chunk" --progress \
      || it_fail "publish failed (exit $?)"
  else
    it_admin publish "$file" --name demo.img --chunk-size "$chunk" --no-progress \
      || it_fail "publish failed (exit $?)"
  fi
  watch_nodes "$file" "$2" "$t0"
}

# watch_nodes FILE V T0: waits until every node's current is vV, then checks
# each against FILE with sha256sum; times from T0 (pub_s: until now).
watch_nodes() {
  local file=$1 sha t0=$3 t1 t2 watch=
  sha=$(it_sha "$file")
  t1=$(date +%s.%N)
  if $tty; then
    it_admin status demo.img --watch --interval 500 &
    watch=$!
  fi
  local last=-1 done_n id t_first=
  while :; do
    done_n=0
    for id in "${IT_NODES[@]}"; do
      [ "$(readlink "$IT_DIR/$id/demo.img/current" 2>/dev/null)" = "v$2" ] && done_n=$((done_n + 1))
    done
    [ -z "$t_first" ] && [ "$done_n" -gt 0 ] && t_first=$(date +%s.%N)
    if ! $tty && [ "$done_n" != "$last" ]; then
      echo "  $(date -u +%H:%M:%S) $done_n/$nodes nodes hold v$2"
      last=$done_n
    fi
    [ "$done_n" -eq "$nodes" ] && break
    [ $SECONDS -lt $((limit - 5)) ] || it_fail "not every node got v$2 in time"
    sleep 0.1
  done
  t2=$(date +%s.%N)
  if [ -n "$watch" ]; then kill "$watch" 2>/dev/null || true; wait "$watch" 2>/dev/null || true; fi
  pub_s=$(echo "$t1 - $t0" | bc -l)
  fanout_s=$(echo "$t2 - $t1" | bc -l)
  first_s=$(echo "$t_first - $t0" | bc -l)
  total_s=$(echo "$t2 - $t0" | bc -l)
  # Every node's current, byte for byte against the source.
  local bad=0
  for id in "${IT_NODES[@]}"; do
    got=$(sha256sum "$IT_DIR/$id/demo.img/current" | cut -d' ' -f1)
    if [ "$got" = "$sha" ]; then ok=ok; else ok=MISMATCH; bad=$((bad + 1)); fi
    printf '  %-5s %-4s %-4s current -> %-4s sha256 %s %s\n' "$id" \
      "$(awk -v i="$id" '$1 == i { print $3 }' "$IT_DIR/roster")" \
      "$(awk -v i="$id" '$1 == i { print $4 }' "$IT_DIR/roster")" \
      "$(readlink "$IT_DIR/$id/demo.img/current")" "$got" "$ok"
  done
  [ $bad -eq 0 ] || it_fail "$bad nodes hold bytes other than the source's"
  echo "  source sha256 $sha: all $nodes nodes match"
}

# ---- version 1 ----
say "generating a $size_mib MiB file"
it_make_file "$IT_DIR/demo.img" "$size_mib"
size=$(stat -c %s "$IT_DIR/demo.img")
say "publishing demo.img v1 ($size bytes, chunks of $chunk)"
publish_and_watch "$IT_DIR/demo.img" 1
pub1=$pub_s fan1=$fanout_s tot1=$total_s first1=$first_s
sleep 0.5
link_bytes "$IT_DIR/bytes.1"

# ---- version 2: 1% of the chunks changed ----
say "changing $change% of the chunks and publishing v2"
it_mutate "$IT_DIR/demo.img" "$change"
publish_and_watch "$IT_DIR/demo.img" 2
pub2=$pub_s fan2=$fanout_s tot2=$total_s first2=$first_s
sleep 0.5
link_bytes "$IT_DIR/bytes.2"

# ---- version 3: writers change the file, a bump merges their changes ----
say "4 writers append and 1 overwrites through the origin head, then a bump makes v3"
wsize=$((4 * 1048576))
cp "$IT_DIR/demo.img" "$IT_DIR/model.img"
for w in 1 2 3 4 5; do head -c "$wsize" /dev/urandom >"$IT_DIR/w$w.bin"; done
tw0=$(date +%s.%N)
for w in 1 2 3 4; do
  it_writer append demo.img "$IT_DIR/w$w.bin" --change-size 64K >"$IT_DIR/w$w.acks" 2>"$IT_DIR/w$w.err" &
  wpid[w]=$!
done
it_writer write demo.img --offset $((size / 2)) "$IT_DIR/w5.bin" --change-size 64K \
  >"$IT_DIR/w5.acks" 2>"$IT_DIR/w5.err" &
wpid[5]=$!
failover=""
if $zk; then
  # the head dies mid-run: once a quarter of the changes are acknowledged
  head=$(it_wait_head 30)
  until [ "$(cat "$IT_DIR"/w?.acks 2>/dev/null | wc -l)" -ge 40 ]; do sleep 0.01; done
  tk=$(date +%s.%N)
  it_stop "$head" KILL
  echo "  SIGKILLed the origin head $head after $(cat "$IT_DIR"/w?.acks | wc -l) acknowledged changes"
  until new=$(it_head) && [ -n "$new" ] && [ "$new" != "$head" ]; do
    [ $SECONDS -lt $((limit - 5)) ] || it_fail "no origin leads after the head's death"
    sleep 0.02
  done
  tl=$(date +%s.%N)
  failover=$(printf '%s, elected through ZooKeeper %.2f s after %s was killed' "$new" "$(echo "$tl - $tk" | bc -l)" "$head")
  echo "  the new head is $failover; the writers go on through it"
fi
for w in 1 2 3 4 5; do
  wait "${wpid[w]}" || it_fail "writer $w failed: $(tail -n 1 "$IT_DIR/w$w.err")"
done
tw1=$(date +%s.%N)
if $zk; then
  it_start_node "$head"
  it_wait_up "$head" 30
  until tail -n +"${IT_LOG_FROM[$head]}" "$IT_DIR/$head.log" | grep -q "this origin follows"; do
    [ $SECONDS -lt $((limit - 5)) ] || it_fail "$head did not rejoin"
    sleep 0.05
  done
  echo "  $head restarted: it rejoined the chain as a follower ($(tail -n +"${IT_LOG_FROM[$head]}" "$IT_DIR/$head.log" | grep -o "origin chain: epoch [0-9]*, [a-z0-9,]*" | tail -n 1))"
fi
# The model: v2 with every acknowledged change applied in (version, index) order.
for w in 1 2 3 4 5; do sed "s/\$/ $w/" "$IT_DIR/w$w.acks"; done | sort -k2,2n -k4,4n >"$IT_DIR/acks"
nchanges=$(wc -l <"$IT_DIR/acks")
while read -r _ _ _ _ _ off _ len _ in w; do
  dd if="$IT_DIR/w$w.bin" of="$IT_DIR/model.img" iflag=skip_bytes,count_bytes oflag=seek_bytes \
    conv=notrunc skip="$in" count="$len" seek="$off" status=none
done <"$IT_DIR/acks"
printf '  %d changes of 64 KiB (%d MiB) acknowledged by all %d origins in %.2f s\n' \
  "$nchanges" $((5 * wsize / 1048576)) "$origins" "$(echo "$tw1 - $tw0" | bc -l)"
tb0=$(date +%s.%N)
it_writer bump demo.img | sed 's/^/  /' || it_fail "bump failed"
bump_s=$(echo "$(date +%s.%N) - $tb0" | bc -l)
watch_nodes "$IT_DIR/model.img" 3 "$tb0"
write_s=$(echo "$tw1 - $tw0" | bc -l) tot3=$total_s first3=$first_s
sleep 0.5
link_bytes "$IT_DIR/bytes.3"

# ---- summary ----
cs=$(numfmt --from=iec "$chunk")
nchunks=$(( (size + cs - 1) / cs ))
changed=$(( nchunks * change / 100 )); [ $changed -ge 1 ] || changed=1
say "summary"
printf '  file %s bytes, %d chunks of %s; %d origins, %d nodes in %d regions x %d zones\n' \
  "$size" "$nchunks" "$chunk" "$origins" "$nodes" "$regions" "$zones"
echo "  (nodes fetch while the publish runs; a version becomes current once every origin holds it)"
printf '  v1: from the publish command: every origin durable %.2f s; first node current %.2f s, all %d nodes %.2f s\n' \
  "$pub1" "$first1" "$nodes" "$tot1"
printf '      efficiency (S/B)/T = T_first/T_all = %.2f; %d x %d bytes delivered at %.0f MiB/s in aggregate\n' \
  "$(echo "$first1 / $tot1" | bc -l)" "$nodes" "$size" "$(echo "$nodes * $size / $tot1 / 1048576" | bc -l)"
printf '  v2: %d of %d chunks changed (%d bytes): every origin durable %.2f s; first node %.2f s, all nodes %.2f s\n' \
  "$changed" "$nchunks" "$((changed * cs))" "$pub2" "$first2" "$tot2"
printf '      efficiency T_first/T_all = %.2f\n' "$(echo "$first2 / $tot2" | bc -l)"
printf '  v3: %d changes from 5 writers acknowledged in %.2f s (%.0f changes/s); bump to every origin merged and committed %.2f s, first node %.2f s, all nodes %.2f s\n' \
  "$nchanges" "$write_s" "$(echo "$nchanges / $write_s" | bc -l)" "$bump_s" "$first3" "$tot3"
[ -z "$failover" ] || printf '      failover during the writes: the new head %s; no acknowledged change lost\n' "$failover"
fetched() { # chunks the nodes say they fetched for version $1, times the chunk size
  local n
  n=$(cat "$IT_DIR"/n*.log | sed -n "s/.*demo.img v$1: reused [0-9]* bytes locally, \([0-9]*\) chunks to fetch.*/\1/p" | awk '{ s += $1 } END { print s + 0 }')
  echo $((n * cs))
}
printf '  nodes fetched (their logs, chunks x chunk size): v1 %d bytes, v2 %d bytes, v3 %d bytes\n' \
  "$(fetched 1)" "$(fetched 2)" "$(fetched 3)"
printf '\n  %-24s %16s %16s %16s   (kernel counters, lower bounds)\n' "bytes on the network" "v1" "v2 (delta)" "v3 (writes)"
t1=0 t2=0 t3=0
while read -r c b1; do
  b2=$(awk -v c="$c" '$1 == c { print $2 }' "$IT_DIR/bytes.2")
  b3=$(awk -v c="$c" '$1 == c { print $2 }' "$IT_DIR/bytes.3")
  d=$((b2 - b1)) d3=$((b3 - b2))
  printf '  %-24s %16d %16d %16d\n' "${c//_/ }" "$b1" "$d" "$d3"
  t1=$((t1 + b1)) t2=$((t2 + d)) t3=$((t3 + d3))
done <"$IT_DIR/bytes.1"
printf '  %-24s %16d %16d %16d\n' "total" "$t1" "$t2" "$t3"
ideal1=$(( size * (origins + nodes) ))
ideal2=$(( changed * cs * (origins + nodes) ))
printf '  one copy per process would be %d bytes for v1 and %d for v2: ratio %.2f and %.2f\n' \
  "$ideal1" "$ideal2" "$(echo "$t1 / $ideal1" | bc -l)" "$(echo "$t2 / $ideal2" | bc -l)"
echo
echo "demo done; stopping every process it started"
