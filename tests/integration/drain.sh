#!/usr/bin/env bash
# fdadmin drain of an interior node mid-transfer: its children are re-parented, every node (the drained one too) completes with the source's SHA-256, its uploads stop; undrain makes it interior again in the next version's plan.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init drain 300
IT_CHUNK=64K
# Heartbeats every 500 ms (dead after 2.5 s): on a loaded machine the 200 ms
# default lets nodes be declared dead mid-transfer, and the re-parenting
# churn that follows is the failure path, not what this test is about.
IT_HEARTBEAT_MS=${IT_HEARTBEAT_MS:-500}
it_cluster 3 2 2 3

# up_bytes ID: "LOCAL:PEER BYTES_ACKED" for each established connection on
# ID's listen port (the server end: bytes it uploaded and the peer acked),
# from the kernel's per-connection counters.
up_bytes() {
  ss -Htin state established "( sport = :${IT_PORT[$1]} )" 2>/dev/null | awk '
    !/^[ \t]/ { cur = (NF >= 4) ? $3 ">" $4 : ""; next }
    cur != "" && match($0, /bytes_acked:[0-9]+/) { print cur, substr($0, RSTART + 12, RLENGTH - 12); cur = "" }'
}
# grown A B: bytes uploaded between two up_bytes samples (connections in
# both; a connection new in B counts whole).
grown() {
  awk 'FNR == NR { a[$1] = $2; next } { sum += $2 - ($1 in a ? a[$1] : 0) } END { print sum + 0 }' "$1" "$2"
}
dependents() { # dependents ID: fdsched's (child, stripe) edges under ID
  it_admin --json nodes | python3 -c '
import json, sys
for n in json.load(sys.stdin):
    if n["node_id"] == sys.argv[1]:
        print(n["dependents"], n["state"])' "$1"
}
incomplete() { # nodes without a current version of big.img yet (cheap: no hashing)
  local n=0 id
  for id in "${IT_NODES[@]}"; do [ -e "$IT_DIR/$id/big.img/current" ] || n=$((n + 1)); done
  echo $n
}

it_make_file "$IT_DIR/src" 128
sha=$(it_sha "$IT_DIR/src")
it_publish "$IT_DIR/src" big.img &
pub=$!

# An interior node caught serving children while it is itself incomplete.
victim=
until=$((SECONDS + 60))
while [ -z "$victim" ] && [ $SECONDS -lt $until ]; do
  for id in $(it_tree_edges | awk '{ print $1 }' | sort -u); do
    [ -e "$IT_DIR/$id/big.img/current" ] && continue
    kids=$(it_tree_edges | awk -v p="$id" '$1 == p { printf "%s ", $2 }')
    if [ -n "$kids" ]; then victim=$id; break; fi
  done
  [ -n "$victim" ] || sleep 0.05
done
[ -n "$victim" ] || it_fail "no interior node caught mid-transfer"
up_bytes "$victim" >"$IT_DIR/up0"
sleep 0.3
up_bytes "$victim" >"$IT_DIR/up1"
read -r dep state < <(dependents "$victim")
before=$(grown "$IT_DIR/up0" "$IT_DIR/up1")

t0=$(date +%s%N)
left0=$(incomplete)
out=$(it_admin drain "$victim" --timeout 60 2>"$IT_DIR/drain.err") || it_fail "drain exited $?: $out $(cat "$IT_DIR/drain.err")"
t1=$(date +%s%N)
# Its children move away: from 0.3 s after the drain returned no bytes leave
# it for 0.7 s (the kernel's counters), while other nodes still download.
sleep 0.3
up_bytes "$victim" >"$IT_DIR/up2"
sleep 0.7
up_bytes "$victim" >"$IT_DIR/up3"
still=$(incomplete)
served=$(it_tree_edges | awk -v p="$victim" '$1 == p { printf "%s ", $2 }')
after=$(grown "$IT_DIR/up2" "$IT_DIR/up3")

it_log "victim $victim ($state, $dep dependents in fdsched's plan) serves: $kids"
[ "$dep" -gt 0 ] || it_fail "$victim has no dependents in fdsched's plan"
it_log "$victim uploaded $before bytes in 0.3 s before the drain; $left0 nodes incomplete at the drain"
it_log "fdadmin drain: $out ($(( (t1 - t0) / 1000000 )) ms; stderr: $(tr '\n' ' ' <"$IT_DIR/drain.err"))"
case "$out" in *"nothing depends on it"*) ;; *) it_fail "drain did not report completion: $out" ;; esac
it_log "$victim uploaded $after bytes in 0.7 s from 0.3 s after the drain ($still nodes still incomplete then; connections to it from: ${served:-none})"
[ "$left0" -gt 0 ] && [ "$still" -gt 0 ] ||
  it_fail "distribution finished within the measurement window (make the file bigger)"
[ "$after" -lt 65536 ] || it_fail "$victim still uploads after the drain: $after bytes in 0.7 s"
read -r dep state < <(dependents "$victim")
[ "$dep" = 0 ] && [ "$state" = draining ] || it_fail "after drain: $dep dependents, state $state"
grep -q "fdsched: $victim draining (admin), [0-9]* dependents left" "$IT_DIR/sched.log" ||
  it_fail "fdsched's log does not show the drain"
# Each child it served got an order naming another parent (the node logs the
# re-parenting of each stripe it fetched from the drained node).
for k in $kids; do
  grep -q "stripe [0-9]*: re-parent $victim -> " "$IT_DIR/$k.log" ||
    it_fail "$k was not re-parented away from $victim"
  it_log "$k: $(grep -o "stripe [0-9]*: re-parent $victim -> [^ ]*" "$IT_DIR/$k.log" | tr '\n' ';')"
done

wait "$pub" || it_fail "publish exited $?"
it_wait_current big.img "$sha" 180
it_log "all ${#IT_NODES[@]} nodes (the drained $victim too) hold v1 $sha"

# Draining again is accepted at once; --no-wait; exit codes.
it_admin drain "$victim" --no-wait >/dev/null || it_fail "a second drain failed"
rc=0; it_admin drain nobody --no-wait >/dev/null 2>&1 || rc=$?
[ $rc = 1 ] || it_fail "drain of an unknown node exited $rc (want 1)"
rc=0; "$FDADMIN" --scheduler "$(it_sched_addr)" --cluster-key "$IT_DIR/cluster.key" drain "$victim" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || it_fail "drain without the admin key exited $rc (want 2: configuration)"

# The state survives an fdsched restart (its op log).
it_stop sched
it_start_sched
sleep 1
read -r dep state < <(dependents "$victim")
[ "$state" = draining ] || it_fail "after an fdsched restart $victim is $state"
it_log "after an fdsched restart $victim is still draining ($dep dependents)"

# Undrain: the next version's plan makes it interior again.
out=$(it_admin undrain "$victim") || it_fail "undrain exited $?"
it_log "fdadmin undrain: $out"
read -r dep state < <(dependents "$victim")
[ "$state" = alive ] || it_fail "after undrain $victim is $state"
cp "$IT_DIR/src" "$IT_DIR/src2"
it_mutate "$IT_DIR/src2" 10
sha2=$(it_sha "$IT_DIR/src2")
it_publish "$IT_DIR/src2" big.img >/dev/null || it_fail "publish of v2 exited $?"
read -r dep state < <(dependents "$victim")
it_log "v2 plan: $victim ($state) has $dep dependents"
[ "$dep" -gt 0 ] || it_fail "$victim is not interior in v2's plan after undrain"
it_wait_current big.img "$sha2" 180
echo "PASS drain"
