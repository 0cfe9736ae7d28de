#!/usr/bin/env bash
# it_zk_session: common/fd_zk.h (the daemons' ZooKeeper session: election,
# conditional update, loss of quorum, an expired session) against a real
# 3-server ensemble; the checks are it_zk.c's.
. "$(dirname "$0")/lib.sh" "$1"
it_require "$IT_BUILD/tests/integration/it_zk"
it_init zk_session 240
it_zk_start 3
"$IT_BUILD/tests/integration/it_zk" "$IT_ZK" "${WZ_PID[1]}" "${WZ_PID[2]}" "${WZ_PID[3]}" ||
  it_fail "it_zk failed"
it_log "PASS"
