#!/usr/bin/env bash
# Per-node rate caps (upload_bps_max, download_bps_max) hold: with every node capped at 64 Mbit/s both ways, no node completes a 48 MiB version sooner than the cap allows, none sends more than the cap allows over the run, /metrics shows the caps and the time they held sends back, the heartbeats carry those stalls to `fdadmin nodes --json` and `status --json` (a capped child's credit held its parent back, per child too), and every node ends with the source's bytes.
#
# Only bounds that cannot be met by luck are checked (a node can never beat
# its cap, however idle the machine); how close to the cap a node runs is
# measured by perf/fanout --cap, not here.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init rate_caps 180

CAP=64000000 # bits/s
MB=48
IT_LEAF_INI="upload_bps_max = $CAP
download_bps_max = $CAP
metrics_listen = 127.0.0.1:0
metrics_port_file = $IT_DIR/{id}.mport"
it_cluster 3 2 2 1

http_get() { # URL: the body (python3, which the test setup installs; curl may be absent)
  python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1" 2>/dev/null
}
scrape() { # ID: its /metrics page (the metrics server may start a moment after the node's port)
  local i page
  for i in $(seq 1 50); do
    if [ -s "$IT_DIR/$1.mport" ] &&
      page=$(http_get "http://127.0.0.1:$(cat "$IT_DIR/$1.mport")/metrics"); then
      printf '%s\n' "$page"
      return 0
    fi
    sleep 0.1
  done
  it_fail "$1: no /metrics answer"
}
metric() { # ID NAME [LABEL-MATCH]: the value of the first sample matching
  local page
  page=$(scrape "$1")
  awk -v n="$2" -v l="${3:-}" '$1 ~ "^"n"([{]|$)" && index($1, l) { print $2; exit }' <<<"$page"
}

for id in "${IT_NODES[@]}"; do
  v=$(metric "$id" fdist_node_rate_cap_bits_per_second 'direction="download"')
  [ "$v" = "$CAP" ] || it_fail "$id reports download cap '$v', want $CAP"
  v=$(metric "$id" fdist_node_rate_cap_bits_per_second 'direction="upload"')
  [ "$v" = "$CAP" ] || it_fail "$id reports upload cap '$v', want $CAP"
done

it_make_file "$IT_DIR/src" $MB
sha=$(it_sha "$IT_DIR/src")
start=$(date +%s.%N)
it_publish "$IT_DIR/src" big.img >/dev/null || it_fail "publish exited $?"
# Each node's time to current, from the publish's start.
declare -A DONE=()
until=$((SECONDS + 120))
while [ ${#DONE[@]} -lt ${#IT_NODES[@]} ]; do
  for id in "${IT_NODES[@]}"; do
    [ -n "${DONE[$id]:-}" ] && continue
    [ "$(it_node_sha "$id" big.img)" = "$sha" ] && DONE[$id]=$(date +%s.%N)
  done
  [ $SECONDS -lt $until ] || it_fail "not every node holds big.img after 120 s"
  sleep 0.1
done
end=$(date +%s.%N)

bytes=$((MB * 1024 * 1024))
# The bound: the bytes less what the bucket (a tenth of a second of the
# rate) and the receive windows (4 chunks of 256 KiB for each of the 4
# stripes' streams) let in ahead of it.
slack=$((CAP / 8 / 10 + 4 * 4 * 262144))
min_s=$(python3 -c "print(($bytes - $slack) / ($CAP / 8))")
for id in "${IT_NODES[@]}"; do
  t=$(python3 -c "print(round(${DONE[$id]} - $start, 3))")
  it_log "$id current after $t s (the cap allows no less than $min_s s)"
  python3 -c "import sys; sys.exit(0 if $t >= $min_s else 1)" ||
    it_fail "$id received $bytes bytes in $t s: faster than its download cap"
  # Sent over the whole run: at most the cap's worth plus one bucket and
  # one chunk in flight per child stream.
  page=$(scrape "$id")
  sent=$(awk '/^fdist_node_sent_bytes_total/ { s += $2 } END { printf "%d", s }' <<<"$page")
  max_sent=$(python3 -c "print(int(($end - $start) * $CAP / 8 + $slack + 4 * 262144))")
  it_log "$id sent $sent bytes (the cap allows at most $max_sent)"
  [ "$sent" -le "$max_sent" ] || it_fail "$id sent $sent bytes in the run: more than its upload cap allows"
done
# The download cap held credit back on some node (else this test proved nothing).
held=0
for id in "${IT_NODES[@]}"; do
  v=$(metric "$id" fdist_node_receive_capped_seconds_total)
  python3 -c "import sys; sys.exit(0 if float('${v:-0}') > 0 else 1)" && held=$((held + 1))
done
[ $held -gt 0 ] || it_fail "no node's download cap ever held credit back"
it_log "the download cap held credit back on $held of ${#IT_NODES[@]} nodes"
# ... and the upload cap held sends back on some node (every node serves children)
held=0
for id in "${IT_NODES[@]}"; do
  v=$(metric "$id" fdist_node_send_blocked_seconds_total 'cause="upload_cap"')
  python3 -c "import sys; sys.exit(0 if float('${v:-0}') > 0 else 1)" && held=$((held + 1))
done
[ $held -gt 0 ] || it_fail "no node's upload cap ever held a send back"
it_log "the upload cap held sends back on $held of ${#IT_NODES[@]} nodes"
# The heartbeats carried the stalls to fdsched: the download-capped
# children's credit held their parents back (peer_window, per child too),
# the upload cap held sends, and receivers held credit while storing.
check_stalls() { # the JSON of fdadmin nodes then status: 0 when every figure is there
  python3 - "$1" "$2" <<'PY'
import json, sys
nodes, status = json.loads(sys.argv[1]), json.loads(sys.argv[2])
keys = ["blocked_ms", "blocked_pool_ms", "blocked_socket_ms", "blocked_upload_cap_ms",
        "credit_write_ms", "credit_sync_ms"]
ids = {n["node_id"] for n in nodes}
tot = {k: sum(n["stalls"][k] for n in nodes) for k in keys}
kids = [c for n in nodes for c in n["child_stalls"] if c["blocked_ms"] > 0 and c["node_id"] in ids]
print("stalls summed over nodes (ms): " + ", ".join("%s %d" % (k, tot[k]) for k in keys) +
      "; %d child stall(s) > 0; status says %s" % (len(kids), status["stalls"]))
ok = (tot["blocked_ms"] > 0 and tot["blocked_upload_cap_ms"] > 0 and
      tot["credit_write_ms"] + tot["credit_sync_ms"] > 0 and kids and
      all(set(keys) <= set(n["stalls"]) for n in nodes) and set(keys) <= set(status["stalls"]) and
      status["stalls"]["blocked_ms"] > 0)
sys.exit(0 if ok else 1)
PY
}
until=$((SECONDS + 10))
while :; do
  nj=$(it_admin nodes --json) || it_fail "fdadmin nodes --json exited $?"
  sj=$(it_admin status --json) || it_fail "fdadmin status --json exited $?"
  out=$(check_stalls "$nj" "$sj") && break
  [ $SECONDS -lt $until ] || it_fail "the heartbeats' stalls did not reach fdadmin: $out"
  sleep 0.5
done
it_log "$out"
echo "PASS rate_caps"
