#!/usr/bin/env bash
# Publish one file to a cluster (3 origins, 8 nodes in 2 regions x 2 zones): every node's current has the source's SHA-256.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init publish_all 120
it_cluster 3 2 2 2

it_make_file "$IT_DIR/src" 24
sha=$(it_sha "$IT_DIR/src")
it_publish "$IT_DIR/src" big.img --json >"$IT_DIR/publish.json" || it_fail "publish exited $?"
grep -q '"version":1,' "$IT_DIR/publish.json" || it_fail "publish did not report v1: $(cat "$IT_DIR/publish.json")"

# Acknowledged means every origin holds it whole, before any node does.
for o in "${IT_ORIGINS[@]}"; do
  [ -f "$IT_DIR/$o/big.img/v1" ] || it_fail "origin $o does not hold v1 after the ack"
  [ "$(it_sha "$IT_DIR/$o/big.img/v1")" = "$sha" ] || it_fail "origin $o holds other bytes"
done
it_wait_current big.img "$sha" 30
it_log "all ${#IT_NODES[@]} nodes hold big.img v1 ($sha)"

# The read commands answer, in JSON too.
it_admin versions --json | grep -q '"version":1' || it_fail "fdadmin versions does not list v1"
it_admin status big.img --json | grep -q '"nodes_alive"' || it_fail "fdadmin status --json"
it_admin nodes --json | grep -q '"node_id":"n1"' || it_fail "fdadmin nodes does not list n1"
echo "PASS publish_all"
