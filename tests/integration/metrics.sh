#!/usr/bin/env bash
# A real Prometheus scrapes every fdnode's and fdsched's /metrics: after a publish, every fdnode's current-version gauge is the new version and its received bytes (summed over link classes) are the version's size within 1%.
#
# Ports: every daemon binds /metrics on port 0 and writes the port to its
# metrics_port_file, as the harness does for the service ports (lib.sh,
# "Ports"). Prometheus itself cannot: --web.listen-address=127.0.0.1:0 binds
# a port it never reports. So this test asks the kernel for a free port
# (bind port 0, read it, close), hands it to Prometheus, and if another
# process took it in between (Prometheus exits, "address already in use" in
# its log) tries again with a new one, a bounded number of times.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
if [ ! -x "$PROMETHEUS" ]; then
  echo "SKIP: $PROMETHEUS not installed (apt-get install prometheus)" >&2
  exit 77
fi
it_init metrics 180

IT_NODE_INI="metrics_listen = 127.0.0.1:0
metrics_port_file = $IT_DIR/{id}.mport"
IT_SCHED_INI="metrics_listen = 127.0.0.1:0
metrics_port_file = $IT_DIR/sched.mport"
it_cluster 3 2 2 2
daemons=(sched "${IT_ORIGINS[@]}" "${IT_NODES[@]}")

# Every daemon's /metrics port, from its port file (written once listening).
declare -A MPORT=()
for id in "${daemons[@]}"; do
  f=$IT_DIR/$id.mport
  [ -s "$f" ] || it_fail "$id wrote no metrics_port_file ($f)"
  MPORT[$id]=$(cat "$f")
  [[ ${MPORT[$id]} =~ ^[1-9][0-9]*$ ]] || it_fail "$id: bad metrics port '${MPORT[$id]}'"
done

{
  echo "global:"
  echo "  scrape_interval: 1s"
  echo "  scrape_timeout: 1s"
  echo "scrape_configs:"
  echo "  - job_name: fdist"
  echo "    static_configs:"
  for id in "${daemons[@]}"; do
    echo "      - targets: ['127.0.0.1:${MPORT[$id]}']"
    echo "        labels: {daemon: '$id'}"
  done
} >"$IT_DIR/prometheus.yml"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts Prometheus and waits for its readiness endpoint; retries on a port
# taken meanwhile.
PROM_PORT=
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  rm -rf "$IT_DIR/prom"
  it_start prometheus "$PROMETHEUS" --config.file="$IT_DIR/prometheus.yml" \
    --storage.tsdb.path="$IT_DIR/prom" --web.listen-address="127.0.0.1:$port" \
    --log.level=warn
  until=$((SECONDS + 30))
  while kill -0 "${IT_PID[prometheus]}" 2>/dev/null && [ $SECONDS -lt $until ]; do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "http://127.0.0.1:$port/-/ready" 2>/dev/null; then
      PROM_PORT=$port
      break
    fi
    sleep 0.2
  done
  [ -n "$PROM_PORT" ] && break
  if kill -0 "${IT_PID[prometheus]}" 2>/dev/null; then it_fail "prometheus not ready in 30 s"; fi
  wait "${IT_PID[prometheus]}" 2>/dev/null || true
  unset "IT_PID[prometheus]"
  grep -qi "address already in use" "$IT_DIR/prometheus.log" ||
    it_fail "prometheus exited at start: $(tail -n 5 "$IT_DIR/prometheus.log" | tr '\n' ' ')"
  it_log "port $port was taken before prometheus bound it: again ($attempt)"
done
[ -n "$PROM_PORT" ] || it_fail "prometheus found no free port in 5 attempts"
it_log "prometheus on 127.0.0.1:$PROM_PORT scraping ${#daemons[@]} daemons"

# prom PATH: GET Prometheus's HTTP API, the JSON's data on stdout.
prom() {
  python3 - "http://127.0.0.1:$PROM_PORT$1" <<'EOF'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    doc = json.load(r)
if doc.get("status") != "success":
    sys.exit("prometheus: " + json.dumps(doc))
print(json.dumps(doc["data"]))
EOF
}

# query EXPR [LABEL]: one line per series, "<its LABEL (daemon)> value".
query() {
  local q
  q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")
  prom "/api/v1/query?query=$q" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["result"]:
    print(r["metric"].get(sys.argv[1], "-"), r["value"][1])' "${2:-daemon}"
}

# Every target scraped and up.
until=$((SECONDS + 30))
while :; do
  up=$(prom /api/v1/targets | python3 -c '
import json, sys
print(sum(1 for t in json.load(sys.stdin)["activeTargets"] if t["health"] == "up"))')
  [ "$up" -eq ${#daemons[@]} ] && break
  [ $SECONDS -lt $until ] || it_fail "only $up of ${#daemons[@]} targets up after 30 s"
  sleep 0.5
done
it_log "all ${#daemons[@]} targets up"

it_make_file "$IT_DIR/src" 16
size=$(stat -c %s "$IT_DIR/src")
sha=$(it_sha "$IT_DIR/src")
it_publish "$IT_DIR/src" big.img --json >"$IT_DIR/publish.json" || it_fail "publish exited $?"
grep -q '"version":1,' "$IT_DIR/publish.json" || it_fail "publish did not report v1"
it_wait_current big.img "$sha" 60
it_log "every node holds big.img v1 ($size bytes)"

# What Prometheus scraped after that: poll until every fdnode's series show
# it (a scrape a second), then check each figure.
nodes=("${IT_ORIGINS[@]}" "${IT_NODES[@]}")
until=$((SECONDS + 30))
while :; do
  bad=()
  versions=$(query 'fdist_file_current_version{file="big.img"}')
  received=$(query 'sum by (daemon) (fdist_node_received_bytes_total)')
  unknown=$(query 'sum by (daemon) (fdist_node_received_bytes_total{link="unknown"})')
  for id in "${nodes[@]}"; do
    v=$(awk -v d="$id" '$1 == d {print $2}' <<<"$versions")
    r=$(awk -v d="$id" '$1 == d {print $2}' <<<"$received")
    u=$(awk -v d="$id" '$1 == d {print $2}' <<<"$unknown")
    [ "$v" = 1 ] || bad+=("$id: current version ${v:-none}")
    # within 1% of the version's size
    python3 -c 'import sys; r, s = float(sys.argv[1] or 0), int(sys.argv[2]); sys.exit(abs(r - s) > s / 100)' \
      "${r:-0}" "$size" || bad+=("$id: received ${r:-none} bytes of $size")
    [ "${u:-0}" = 0 ] || bad+=("$id: $u bytes from an unknown link class")
  done
  [ ${#bad[@]} -eq 0 ] && break
  [ $SECONDS -lt $until ] || it_fail "after 30 s: ${bad[*]}"
  sleep 1
done
it_log "every fdnode: current version 1, received bytes = $size within 1%"

# The link classes as planned: the head got the file from fdadmin, the
# other origins from the origin before them, nodes from origins and nodes.
pub=$(query "fdist_node_received_bytes_total{link=\"publish\",daemon=\"${IT_ORIGINS[0]}\"}" | awk '{print $2}')
[ "$pub" = "$size" ] || it_fail "head received ${pub:-no} bytes from publish, want $size"
org=$(query 'sum(fdist_node_received_bytes_total{role="node",link="origin"})' | awk '{print $2}')
[ -n "$org" ] && [ "$org" != 0 ] || it_fail "no node received bytes from an origin"
sent=$(query 'sum(fdist_node_sent_bytes_total)' | awk '{print $2}')
recv=$(query 'sum(fdist_node_received_bytes_total{link!="publish"})' | awk '{print $2}')
python3 -c 'import sys; s, r = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(s - r) > r / 100)' \
  "${sent:-0}" "${recv:-0}" || it_fail "bytes sent ($sent) and received from peers ($recv) differ"
it_log "received by link class: $(query 'sum by (link) (fdist_node_received_bytes_total)' link | tr '\n' ' ')"

# Chunks verified, and the storage fdatasync histogram has observations.
chunks=$(query 'sum(fdist_node_chunks_verified_total)' | awk '{print $2}')
[ "${chunks:-0}" != 0 ] || it_fail "no chunk verified"
syncs=$(query 'sum(fdist_storage_fdatasync_seconds_count{kind="chunks"})' | awk '{print $2}')
[ "${syncs:-0}" != 0 ] || it_fail "no fdatasync observed"

# fdsched: the census counts every fdnode alive.
alive=$(query 'fdist_sched_nodes{state="alive"}' | awk '{print $2}')
[ "$alive" = ${#nodes[@]} ] || it_fail "fdsched census: $alive alive, want ${#nodes[@]}"
regs=$(query 'fdist_sched_registers_total' | awk '{print $2}')
[ "${regs:-0}" -ge ${#nodes[@]} ] || it_fail "fdsched registers_total $regs < ${#nodes[@]}"
it_log "fdsched: $alive alive, $regs registers; $chunks chunks verified, $syncs chunk fdatasyncs"

# The write path: a change acknowledged by the head, then a bump every
# origin merges into v2, which every fdnode's gauge then shows.
head -c 65536 /dev/urandom >"$IT_DIR/patch"
it_writer write big.img --offset 4096 "$IT_DIR/patch" >"$IT_DIR/write.out" 2>&1 ||
  it_fail "write failed: $(cat "$IT_DIR/write.out")"
it_writer bump big.img >"$IT_DIR/bump.out" 2>&1 || it_fail "bump failed: $(cat "$IT_DIR/bump.out")"
h=${IT_ORIGINS[0]}
until=$((SECONDS + 30))
while :; do
  bad=()
  acked=$(query "fdist_write_changes_acked_total{daemon=\"$h\"}" | awk '{print $2}')
  [ "${acked:-0}" = 1 ] || bad+=("head acked ${acked:-none} changes, want 1")
  lat=$(query "fdist_write_ack_seconds_count{daemon=\"$h\"}" | awk '{print $2}')
  [ "${lat:-0}" = 1 ] || bad+=("head ack latency count ${lat:-none}, want 1")
  merges=$(query 'fdist_write_merges_total' | awk '$2 == 1' | wc -l)
  [ "$merges" = ${#IT_ORIGINS[@]} ] || bad+=("$merges origins merged once, want ${#IT_ORIGINS[@]}")
  v2=$(query 'fdist_file_current_version{file="big.img"} == 2' | wc -l)
  [ "$v2" = ${#nodes[@]} ] || bad+=("$v2 of ${#nodes[@]} fdnodes at v2")
  # download progress: v2 fetched whole everywhere
  done2=$(query 'fdist_file_chunks_held{file="big.img"} == on (daemon) fdist_file_chunks_total{file="big.img"} and on (daemon) fdist_file_fetch_version{file="big.img"} == 2' | wc -l)
  [ "$done2" = ${#nodes[@]} ] || bad+=("$done2 of ${#nodes[@]} fdnodes show v2's chunks all held")
  # the change's changelog fdatasync, on every origin that holds it
  logsyncs=$(query 'fdist_storage_fdatasync_seconds_count{kind="changelog"} > 0' | wc -l)
  [ "$logsyncs" = ${#IT_ORIGINS[@]} ] || bad+=("$logsyncs of ${#IT_ORIGINS[@]} origins show a changelog fdatasync")
  [ ${#bad[@]} -eq 0 ] && break
  [ $SECONDS -lt $until ] || it_fail "after the bump, 30 s: ${bad[*]}"
  sleep 1
done
p99=$(query "histogram_quantile(0.99, fdist_write_ack_seconds_bucket{daemon=\"$h\"})" | awk '{print $2}')
it_log "write path: 1 change acked (ack p99 about $p99 s, interpolated in its bucket), merged on ${#IT_ORIGINS[@]} origins, v2 current on ${#nodes[@]} fdnodes"

# A node killed: fdsched counts the death and repairs the plan around it.
victim=${IT_NODES[-1]}
it_stop "$victim" KILL
until=$((SECONDS + 30))
while :; do
  bad=()
  d=$(query 'fdist_sched_deaths_total' | awk '{print $2}')
  [ "${d:-0}" = 1 ] || bad+=("deaths_total ${d:-none}, want 1")
  r=$(query 'fdist_sched_plan_repairs_total' | awk '{print $2}')
  [ "${r:-0}" -ge 1 ] || bad+=("plan_repairs_total ${r:-none}, want >= 1")
  c=$(query 'fdist_sched_nodes{state="dead"}' | awk '{print $2}')
  [ "${c:-0}" = 1 ] || bad+=("census dead ${c:-none}, want 1")
  [ ${#bad[@]} -eq 0 ] && break
  [ $SECONDS -lt $until ] || it_fail "after killing $victim, 30 s: ${bad[*]}"
  sleep 1
done
it_log "$victim killed: fdsched counted 1 death, $r plan repair(s), census 1 dead"
echo "PASS metrics"
