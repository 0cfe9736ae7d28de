# lib.sh — sourced by every integration test: a whole fdist cluster of real
# processes on loopback (fdsched, origins, nodes), each with its own port,
# config, data dir and log under one temp dir, all stopped and removed on
# exit, Ctrl-C, error or the test's time limit.
#
# Usage in a test:
#   . "$(dirname "$0")/lib.sh" "$1"        # $1: the build dir
#   it_init NAME SECONDS                   # temp dir, traps, watchdog
#   it_cluster ORIGINS REGIONS ZONES NODES_PER_ZONE
#   it_make_file PATH MIB                  # random bytes
#   it_publish PATH NAME [fdadmin publish options]
#   it_wait_current NAME SHA SECONDS [ids...]   # every node's current == SHA
#   it_stop ID [SIGNAL]; it_start_node ID; it_wait_up ID SECONDS   # restart
#   it_writer ARGS...                      # fdadmin as the harness's writer
#   IT_ORIGIN_INI="key = value..."         # extra [node] lines for the origins
#   IT_NODE_INI="key = value..."           # extra [node] lines for every fdnode ({id}: its id)
#   IT_LEAF_INI="key = value..."           # ... for the role-node fdnodes only (not the origins)
#   IT_SCHED_INI="key = value..."          # extra [scheduler] lines for fdsched
#   it_start ID CMD...                     # any other process (e.g. Prometheus): logged,
#                                          # stopped by SIGTERM at cleanup (must exit 0)
#   it_revoke KEY|FILE...; it_wait_revocations SERIAL SECONDS   # revoke, distribute
#   it_zk_start N                          # N ZooKeeper servers (1 or 3, scripts/zk.sh) on
#                                          # free ports: IT_ZK = their addresses; every daemon
#                                          # started after it uses them; stopped at cleanup
#   IT_SCHEDS=N                            # fdsched processes it_cluster starts: sched (the
#                                          # first), sched2, ...; default 2 with IT_ZK, else 1.
#                                          # With IT_ZK each stands for election and every
#                                          # fdnode and fdadmin gets the list of them
#   it_sched_leader                        # prints the id of the fdsched that leads (or fails)
#
# Keys (it_init): the admin key (admin.pem/.pub), the cluster key, the
# origin group's signing key with its certificate (origin.pem, origin.cert:
# every origin's signing_key_file/signing_cert_file) and a writer key with
# its certificate (writer.pem, writer.cert). Every fdnode and fdsched reads
# the revocation list from $IT_DIR/revoked.list (absent until it_revoke).
#
# The daemons' INI keys are written in one place, it_node_config and
# it_sched_config, so the contract lives here and nowhere else.
#
# Ports: no port is picked in advance. Every daemon listens on port 0 and
# writes the port the kernel gave it to its port_file ($IT_DIR/ID.port, temp
# file + rename); it_wait_up reads it into IT_PORT. A port chosen before the
# daemon binds it (checked free with ss, then handed over) can be taken by
# another test running beside this one (ctest -j2) in between — which is how
# it_two_versions once failed with "listen 127.0.0.1:25855: Address already
# in use". Origins are configured by bare id (origins = o1,o2,o3): their
# ports are unknown until they run, so each learns the others' addresses
# from fdsched, and it_cluster waits for that (it_wait_origins) before any
# publish.
#
# A restart (tests restart fdsched, origins and nodes mid-run) re-binds the
# port the daemon reported at its first start, as a real deployment restarts
# on its fixed port: its peers keep pointing at it (the nodes' scheduler
# address, fdsched's member table and the parent addresses in its orders,
# the origins' learned addresses, fdadmin's --origins), so a restart tests
# the same thing it did before port 0. The remaining risk is small: while
# the daemon is down its port is free, and in that window the kernel may
# give it to another process binding port 0 or to an outgoing connection
# (both draw from the ephemeral range, 32768-60999 by default, about 28,000
# ports); the restart then fails at once with "Address already in use" in
# its log and it_wait_up fails the test with it rather than hanging.
set -euo pipefail

IT_BUILD=${1:?usage: $0 BUILD_DIR}
IT_BUILD=$(cd "$IT_BUILD" && pwd)
FDNODE=$IT_BUILD/node/fdnode
FDSCHED=$IT_BUILD/scheduler/fdsched
FDADMIN=$IT_BUILD/admin/fdadmin
FDSTORE=$IT_BUILD/storage/fdstore
IT_HEARTBEAT_MS=${IT_HEARTBEAT_MS:-200}
IT_CHUNK=${IT_CHUNK:-256K}
IT_DIR=
IT_NAME=
IT_WATCHDOG=
declare -A IT_PID=()      # id -> pid of a running process
declare -A IT_PORT=()     # id -> the port it bound at its first start (re-bound on restarts)
declare -A IT_ROSTER=()   # id -> "role region zone", for the roster file
declare -A IT_LOG_FROM=() # id -> first line of its log written by its latest start
IT_NODES=()            # ids of role=node processes, in start order
IT_ORIGINS=()          # ids of origins, chain order (head first)

it_log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S.%3N)" "$IT_NAME" "$*" >&2; }
it_fail() {
  it_log "FAIL: $*"
  exit 1
}

# Exits 77 (ctest: skipped) unless every binary the test needs is built.
it_require() {
  local b missing=()
  for b in "$@"; do [ -x "$b" ] || missing+=("$b"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "SKIP: not built yet: ${missing[*]}" >&2
    exit 77
  fi
}
it_require_cluster() { it_require "$FDNODE" "$FDSCHED" "$FDADMIN"; }

it_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$IT_WATCHDOG" ] && kill "$IT_WATCHDOG" 2>/dev/null || true
  local id st bad=()
  for id in "${!IT_PID[@]}"; do kill -TERM "${IT_PID[$id]}" 2>/dev/null || true; done
  local until=$((SECONDS + 10))
  for id in "${!IT_PID[@]}"; do
    while kill -0 "${IT_PID[$id]}" 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.05; done
    kill -0 "${IT_PID[$id]}" 2>/dev/null && bad+=("$id ignored SIGTERM for 10 s")
    kill -KILL "${IT_PID[$id]}" 2>/dev/null || true
    st=0
    wait "${IT_PID[$id]}" 2>/dev/null || st=$?
    # Every daemon exits 0 on SIGTERM (the sampler of the demo is no daemon).
    [ "$id" = sampler ] || [ $st -eq 0 ] || bad+=("$id exited $st on SIGTERM")
  done
  wz_stop # after the daemons, which would otherwise log its absence
  # A sanitizer report in any log fails the run.
  if [ -n "$IT_DIR" ] && grep -l "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$IT_DIR"/*.log >/dev/null 2>&1; then
    bad+=("sanitizer report in $(grep -l "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$IT_DIR"/*.log | xargs -n1 basename | tr '\n' ' ')")
  fi
  if [ $rc -eq 0 ] && [ ${#bad[@]} -gt 0 ]; then
    printf '%s\n' "${bad[@]}" | sed "s/^/FAIL at cleanup: /" >&2
    rc=1
  fi
  if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -n "$IT_DIR" ]; then
    local f
    for f in "$IT_DIR"/*.log; do
      [ -f "$f" ] || continue
      echo "---- last lines of $(basename "$f")" >&2
      tail -n 15 "$f" >&2 || true
    done
  fi
  if [ -n "$IT_DIR" ] && [ -z "${IT_KEEP:-}" ]; then rm -rf "$IT_DIR"; fi
  [ -n "${IT_KEEP:-}" ] && echo "kept $IT_DIR" >&2
  exit $rc
}

# ZooKeeper (scripts/zk.sh): servers of Debian's zookeeper package, each with
# its own data dir under $IT_DIR/zk; a test that needs it and finds no java
# or jar fails (scripts/deps.sh installs them), it is not skipped.
# shellcheck source=../../scripts/zk.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/zk.sh"
IT_ZK=
# it_head: the id of the live origin that leads the chain at the highest
# epoch its log names ("origin oN leads the chain (epoch E)"); "" when none.
it_head() {
  local o best= best_e=-1 e
  for o in "${IT_ORIGINS[@]}"; do
    [ -n "${IT_PID[$o]:-}" ] || continue
    e=$(tail -n +"${IT_LOG_FROM[$o]:-1}" "$IT_DIR/$o.log" |
      sed -n "s/.*origin $o leads the chain (epoch \([0-9]*\)).*/\1/p" | tail -n 1)
    [ -n "$e" ] || continue
    # a later "stops leading" line takes it back
    tail -n +"${IT_LOG_FROM[$o]:-1}" "$IT_DIR/$o.log" | grep -E "leads the chain|stops leading" |
      tail -n 1 | grep -q "stops leading" && continue
    if [ "$e" -gt "$best_e" ]; then best_e=$e best=$o; fi
  done
  echo "$best"
}
# it_wait_head SECONDS: waits until an origin leads; prints its id.
it_wait_head() {
  local until=$((SECONDS + $1)) h
  while :; do
    h=$(it_head)
    [ -n "$h" ] && { echo "$h"; return 0; }
    [ $SECONDS -lt $until ] || it_fail "no origin leads after $1 s"
    sleep 0.05
  done
}

it_zk_start() {
  wz_available || it_fail "ZooKeeper is not installed (java, $WZ_JAR): run scripts/deps.sh"
  wz_start "$IT_DIR/zk" "${1:-1}" || it_fail "ZooKeeper did not start (logs: $IT_DIR/zk/s*/server.log)"
  IT_ZK=$WZ_CONNECT
  it_log "ZooKeeper: $IT_ZK (leader $WZ_LEADER)"
}

# it_zk_origins: a 3-server ensemble, and origins that elect their head
# through it (2 s sessions) and bump only when asked (the write tests).
it_zk_origins() {
  it_zk_start 3
  IT_ORIGIN_INI="zookeeper = $IT_ZK
zookeeper_session_ms = 2000
bump_changes = 0
bump_bytes = 0
bump_interval_s = 0"
}

# it_origins_hold NAME V SHA WHAT: every origin holds NAME vV (waits up to
# 90 s) and its sha256 is SHA; fails naming WHAT it differs from.
it_origins_hold() {
  local name=$1 v=$2 sha=$3 what=$4 o until
  for o in "${IT_ORIGINS[@]}"; do
    until=$((SECONDS + 90))
    until [ -f "$IT_DIR/$o/$name/v$v" ]; do
      [ $SECONDS -lt $until ] || it_fail "$o does not hold $name v$v"
      sleep 0.2
    done
    [ "$(it_sha "$IT_DIR/$o/$name/v$v")" = "$sha" ] || it_fail "$o's $name v$v differs from $what"
  done
}

# it_bump_check NAME EXTRA ACKS...: bumps NAME through whichever origin
# leads; the version it makes must be byte-identical on every origin and
# become every node's current, hold every acknowledged append of the
# it_writer outputs ACKS at its offset, and — when every change in ACKS was
# acknowledged — nothing else: its size is their lengths plus EXTRA bytes
# (appends acknowledged outside ACKS). Sets IT_V, IT_SIZE.
it_bump_check() {
  local name=$1 extra=$2 out head sha sum
  shift 2
  out=$(it_writer bump "$name" 2>&1) || it_fail "the bump failed: $out"
  it_log "$out"
  IT_V=$(sed -n 's/.*version \([0-9]*\) committed.*/\1/p' <<<"$out")
  [ -n "$IT_V" ] || it_fail "no version in the bump's answer: $out"
  head=$(it_wait_head 30)
  sha=$(it_sha "$IT_DIR/$head/$name/v$IT_V")
  it_origins_hold "$name" "$IT_V" "$sha" "$head's"
  it_wait_current "$name" "$sha" 120
  cat "$@" | "$IT_BUILD/tests/integration/it_writer" check "$IT_DIR/${IT_NODES[0]}/$name/current" >&2 ||
    it_fail "an acknowledged change is missing from v$IT_V (lost)"
  IT_SIZE=$(stat -L -c %s "$IT_DIR/${IT_NODES[0]}/$name/current")
  cat "$@" | grep -q -v '^ack' && return 0 # an unknown outcome may be in it
  sum=$(cat "$@" | awk '$1 == "ack" { s += $5 } END { print s + 0 }')
  [ "$IT_SIZE" -eq $((sum + extra)) ] ||
    it_fail "v$IT_V holds $IT_SIZE bytes, the acknowledged changes $((sum + extra)): a change lost or applied twice"
}

# it_init NAME SECONDS: temp dir, cleanup traps, and a watchdog that fails the
# test when it runs longer than SECONDS.
it_init() {
  IT_NAME=$1
  local limit=$2
  IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fdist-$IT_NAME.XXXXXX")
  trap it_cleanup EXIT
  trap 'it_log "interrupted"; exit 130' INT
  trap 'it_log "FAIL: terminated (SIGTERM, or over the time limit of '"$limit"' s)"; exit 124' TERM
  # The watchdog holds none of the test's fds (ctest waits for its output
  # pipe to close) and takes its sleep with it when cleanup stops it.
  (
    exec </dev/null >/dev/null 2>&1
    sleep "$limit" &
    sp=$!
    trap 'kill $sp 2>/dev/null; exit 0' TERM
    wait $sp && kill -TERM $$ 2>/dev/null
  ) &
  IT_WATCHDOG=$!
  "$FDADMIN" keygen "$IT_DIR/admin.pem" "$IT_DIR/admin.pub" --cluster "$IT_DIR/cluster.key" \
    >/dev/null
  local k
  for k in origin writer; do
    "$FDADMIN" keygen "$IT_DIR/$k.pem" "$IT_DIR/$k.pub" >/dev/null
    "$FDADMIN" --admin-key "$IT_DIR/admin.pem" cert --role "$k" --name "it-$k" --days 30 \
      "$IT_DIR/$k.pub" -o "$IT_DIR/$k.cert" >/dev/null
  done
}

it_port_file() { echo "$IT_DIR/$1.port"; }

# it_start ID CMD...: starts a daemon (its log ID.log, appended), after
# removing its port file so that it_wait_up waits for this start's.
it_start() {
  local id=$1 log=$IT_DIR/$1.log
  shift
  rm -f "$(it_port_file "$id")"
  IT_LOG_FROM[$id]=$(($([ -f "$log" ] && wc -l <"$log" || echo 0) + 1))
  "$@" >>"$log" 2>&1 &
  IT_PID[$id]=$!
  echo "$id $!" >>"$IT_DIR/pids"
}

# it_wait_up ID SECONDS: until ID has written its port file (it listens).
# Fails at once, with the end of its log, if the process exits first. The
# first start's port goes into IT_PORT (and the roster); a restart must
# report the same port.
it_wait_up() {
  local id=$1 until=$((SECONDS + $2)) f port=
  f=$(it_port_file "$id")
  while :; do
    if [ -s "$f" ]; then
      port=$(cat "$f")
      [[ $port =~ ^[1-9][0-9]*$ ]] && break
    fi
    if ! kill -0 "${IT_PID[$id]:-0}" 2>/dev/null; then
      it_fail "$id exited at start: $(tail -n +"${IT_LOG_FROM[$id]:-1}" "$IT_DIR/$id.log" | tail -n 5 | tr '\n' ' ')"
    fi
    [ $SECONDS -lt $until ] || it_fail "$id wrote no port file in $2 s (see $id.log)"
    sleep 0.05
  done
  if [ -z "${IT_PORT[$id]:-}" ]; then
    IT_PORT[$id]=$port
    echo "$id ${IT_ROSTER[$id]:-- - -} $port" >>"$IT_DIR/roster"
  elif [ "$port" != "${IT_PORT[$id]}" ]; then
    it_fail "$id restarted on port $port, not its port ${IT_PORT[$id]}"
  fi
}

# it_wait_origins SECONDS: every running origin is registered with fdsched
# (alive, at its port) and has learned from fdsched where every other origin
# listens (its log says so since its latest start). Until an origin knows
# the next one's address its chain skips it, so a publish before this would
# land on fewer origins.
it_wait_origins() {
  local until=$((SECONDS + $1)) o p nodes pending
  while :; do
    pending=()
    nodes=$(it_admin nodes --json 2>/dev/null || true)
    for o in "${IT_ORIGINS[@]}"; do
      [ -n "${IT_PID[$o]:-}" ] || continue
      grep -q "\"node_id\":\"$o\",[^}]*\"address\":\"127.0.0.1:${IT_PORT[$o]}\",\"state\":\"alive\"" <<<"$nodes" ||
        { pending+=("$o: not alive with fdsched"); continue; }
      for p in "${IT_ORIGINS[@]}"; do
        [ "$p" != "$o" ] && [ -n "${IT_PID[$p]:-}" ] || continue
        tail -n +"${IT_LOG_FROM[$o]}" "$IT_DIR/$o.log" | grep -Eq "origin $p at 127.0.0.1:${IT_PORT[$p]} \(from (fdsched|ZooKeeper)\)" ||
          pending+=("$o: does not know $p yet")
      done
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    [ $SECONDS -lt $until ] || it_fail "origins not ready after $1 s: ${pending[*]}"
    sleep 0.1
  done
}

# The fdsched ids it_cluster starts: sched, sched2, ... (IT_SCHEDS).
it_sched_ids() {
  local n=${IT_SCHEDS:-$([ -n "$IT_ZK" ] && echo 2 || echo 1)} i
  echo sched
  for i in $(seq 2 "$n"); do echo "sched$i"; done
}
# fdsched's address as nodes and fdadmin are given it: with IT_ZK, every
# fdsched's (started so far), comma-separated; else the one's.
it_sched_addr() {
  if [ -z "$IT_ZK" ]; then
    echo "127.0.0.1:${IT_PORT[sched]}"
    return 0
  fi
  local id out=
  for id in $(it_sched_ids); do
    [ -z "${IT_PORT[$id]:-}" ] || out+="${out:+,}127.0.0.1:${IT_PORT[$id]}"
  done
  echo "$out"
}
# it_sched_leader: the id of the fdsched that answers Status (only the
# leader does), or fails.
it_sched_leader() {
  local id
  for id in $(it_sched_ids); do
    [ -n "${IT_PID[$id]:-}" ] && [ -n "${IT_PORT[$id]:-}" ] || continue
    if "$FDADMIN" --scheduler "127.0.0.1:${IT_PORT[$id]}" --cluster-key "$IT_DIR/cluster.key" \
      status --json >/dev/null 2>&1; then
      echo "$id"
      return 0
    fi
  done
  return 1
}
it_origin_list() { # id,... head first (fdnode's origins key: addresses from fdsched)
  local IFS=,
  echo "${IT_ORIGINS[*]}"
}
it_origin_addrs() { # addr:port,... head first (fdadmin's --origins)
  local id out=
  for id in "${IT_ORIGINS[@]}"; do out+="${out:+,}127.0.0.1:${IT_PORT[$id]}"; done
  echo "$out"
}

# it_sched_config [ID]: fdsched ID's INI (default sched).
it_sched_config() {
  local id=${1:-sched}
  cat <<EOF
[scheduler]
listen = 127.0.0.1:${IT_PORT[$id]:-0}
port_file = $(it_port_file "$id")
data_dir = $IT_DIR/$id
cluster_key = $IT_DIR/cluster.key
heartbeat_ms = $IT_HEARTBEAT_MS
stream_loss_is_death = true
EOF
  [ -z "$IT_ZK" ] || printf 'zookeeper = %s\nzookeeper_session_ms = %s\n' "$IT_ZK" \
    "${IT_ZK_SESSION_MS:-3000}"
  # IT_SCHED_TRUSTS_NOBODY=1: a scheduler without the admin key, which
  # cannot check manifests, to show the nodes check them anyway.
  [ -n "${IT_SCHED_TRUSTS_NOBODY:-}" ] ||
    printf 'admin_public_key = %s\nrevocations_file = %s\n' "$IT_DIR/admin.pub" "$IT_DIR/revoked.list"
  [ -z "${IT_SCHED_INI:-}" ] || printf '%s\n' "$IT_SCHED_INI"
  return 0
}

# it_node_config ID ROLE REGION ZONE
it_node_config() {
  cat <<EOF
[node]
id = $1
role = $2
region = $3
zone = $4
listen = 127.0.0.1:0
port_file = $(it_port_file "$1")
data_dir = $IT_DIR/$1
scheduler = $(it_sched_addr)
cluster_key_file = ${IT_CLUSTER_KEY_OVERRIDE:-$IT_DIR/cluster.key}
admin_pub_file = $IT_DIR/admin.pub
revocations_file = $IT_DIR/revoked.list
heartbeat_ms = $IT_HEARTBEAT_MS
threads = ${IT_THREADS:-1}
chunk_buf = $IT_CHUNK
EOF
  [ -z "${IT_POOL_BUFFERS:-}" ] || echo "pool_buffers = $IT_POOL_BUFFERS"
  [ -z "${IT_SCRUB_S:-}" ] || echo "scrub_interval_s = $IT_SCRUB_S"
  [ -z "${IT_NODE_INI:-}" ] || printf '%s\n' "${IT_NODE_INI//\{id\}/$1}"
  [ "$2" = origin ] || [ -z "${IT_LEAF_INI:-}" ] || printf '%s\n' "${IT_LEAF_INI//\{id\}/$1}"
  if [ "$2" = origin ]; then
    echo "origins = $(it_origin_list)"
    echo "signing_key_file = $IT_DIR/origin.pem"
    echo "signing_cert_file = $IT_DIR/origin.cert"
    [ -z "${IT_ORIGIN_INI:-}" ] || printf '%s\n' "$IT_ORIGIN_INI"
  fi
  return 0
}

# it_start_sched [ID]: (re)starts fdsched ID (default sched; on its first
# port if it had one) and waits until it listens.
it_start_sched() {
  local id=${1:-sched}
  mkdir -p "$IT_DIR/$id"
  it_sched_config "$id" >"$IT_DIR/$id.ini"
  IT_ROSTER[$id]="sched - -"
  it_start "$id" "$FDSCHED" --config "$IT_DIR/$id.ini"
  it_wait_up "$id" 20
}

# it_start_node ID [ROLE REGION ZONE]: (re)starts a node; the role, region and
# zone of a restart are the ones it had, and so is its port. Does not wait:
# it_wait_up ID does.
it_start_node() {
  local id=$1 listen=()
  if [ $# -gt 1 ]; then
    it_node_config "$id" "$2" "$3" "$4" >"$IT_DIR/$id.ini"
    IT_ROSTER[$id]="$2 $3 $4"
  fi
  [ -z "${IT_PORT[$id]:-}" ] || listen=(-s "node.listen=127.0.0.1:${IT_PORT[$id]}")
  it_start "$id" "$FDNODE" --config "$IT_DIR/$id.ini" "${listen[@]}"
}

# it_stop ID [SIGNAL]: SIGTERM (default) and wait, or SIGKILL.
it_stop() {
  local id=$1 sig=${2:-TERM} pid=${IT_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -"$sig" "$pid" 2>/dev/null || true
  local until=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && it_fail "$id (pid $pid) ignored SIG$sig for 15 s"
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  unset "IT_PID[$id]"
  if [ "$sig" = TERM ] && [ $rc -ne 0 ]; then it_fail "$id exited $rc on SIGTERM (want 0)"; fi
  return 0
}

# it_cluster ORIGINS REGIONS ZONES NODES_PER_ZONE: origins o1..oN (o1 head; in
# region r1 zone z1, r2 z1, ... round robin) and nodes n1.. spread over
# regions r1..rR x zones z1..zZ; waits until every one listens and the
# origins know each other (it_wait_origins).
it_cluster() {
  local norigins=$1 nregions=$2 nzones=$3 per=$4 i r z k id
  for i in $(seq 1 "$norigins"); do IT_ORIGINS+=("o$i"); done
  for id in $(it_sched_ids); do it_start_sched "$id"; done
  for i in $(seq 1 "$norigins"); do
    r=$(( (i - 1) % nregions + 1 ))
    it_start_node "o$i" origin "r$r" z1
  done
  k=0
  for r in $(seq 1 "$nregions"); do
    for z in $(seq 1 "$nzones"); do
      for i in $(seq 1 "$per"); do
        k=$((k + 1))
        id=n$k
        IT_NODES+=("$id")
        it_start_node "$id" node "r$r" "z$z"
      done
    done
  done
  for id in "${IT_ORIGINS[@]}" "${IT_NODES[@]}"; do it_wait_up "$id" 20; done
  it_wait_origins 30
  it_log "cluster up: fdsched ($(it_sched_ids | wc -l)), ${#IT_ORIGINS[@]} origins, ${#IT_NODES[@]} nodes in $IT_DIR"
}

it_admin() {
  "$FDADMIN" --scheduler "$(it_sched_addr)" --origins "$(it_origin_addrs)" \
    --cluster-key "$IT_DIR/cluster.key" --admin-key "$IT_DIR/admin.pem" "$@"
}

# it_writer ARGS...: fdadmin with the harness's writer key and certificate
# (no admin key): write, append and bump prove the writer role.
it_writer() {
  "$FDADMIN" --scheduler "$(it_sched_addr)" --origins "$(it_origin_addrs)" \
    --cluster-key "$IT_DIR/cluster.key" --writer-key "$IT_DIR/writer.pem" \
    --writer-cert "$IT_DIR/writer.cert" "$@"
}

# it_revoke KEY_ID|FILE...: the admin adds the keys to its revocation list
# ($IT_DIR/admin-revoked.list, kept by fdadmin), then distributes it: a copy
# renamed into place where every fdnode and fdsched reads it.
it_revoke() {
  "$FDADMIN" --admin-key "$IT_DIR/admin.pem" revoke "$@" --list "$IT_DIR/admin-revoked.list" >&2
  cp "$IT_DIR/admin-revoked.list" "$IT_DIR/revoked.list.tmp"
  mv "$IT_DIR/revoked.list.tmp" "$IT_DIR/revoked.list"
}

# it_wait_revocations SERIAL SECONDS: every running daemon has taken list
# SERIAL (its log says so since its latest start).
it_wait_revocations() {
  local serial=$1 until=$((SECONDS + $2)) id pending
  while :; do
    pending=()
    for id in "${!IT_PID[@]}"; do
      [ -f "$IT_DIR/$id.log" ] || continue
      tail -n +"${IT_LOG_FROM[$id]:-1}" "$IT_DIR/$id.log" |
        grep -q "revocation list .*: serial $serial in force" || pending+=("$id")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    [ $SECONDS -lt $until ] || it_fail "revocation list $serial not in force after $2 s: ${pending[*]}"
    sleep 0.1
  done
}

# it_make_file PATH MIB: random content.
it_make_file() { head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$1"; }

# it_mutate PATH PERCENT: overwrites PERCENT% of IT_CHUNK-sized chunks (at
# least one) with fresh random bytes, in place.
it_mutate() {
  local path=$1 pct=$2 cs size n k i
  cs=$(numfmt --from=iec "$IT_CHUNK")
  size=$(stat -c %s "$path")
  n=$(( (size + cs - 1) / cs ))
  k=$(( n * pct / 100 )); [ $k -ge 1 ] || k=1
  for i in $(shuf -i 0-$((n - 1)) -n "$k"); do
    head -c 4096 /dev/urandom | dd of="$path" bs=4096 seek=$((i * cs / 4096)) conv=notrunc status=none
  done
}

it_sha() { sha256sum "$1" | cut -d' ' -f1; }

# SHA-256 of ID's current file of NAME, or "-" when it has none.
it_node_sha() {
  local f="$IT_DIR/$1/$2/current"
  if [ -e "$f" ]; then it_sha "$f"; else echo -; fi
}

# it_publish PATH NAME [options]: fdadmin publish; returns its exit code.
it_publish() {
  local path=$1 name=$2
  shift 2
  it_admin publish "$path" --name "$name" --chunk-size "$IT_CHUNK" --no-progress "$@"
}

# it_wait_current NAME SHA SECONDS [ids...]: every listed node (default: all
# nodes) has current == SHA; fails naming the ones that do not.
it_wait_current() {
  local name=$1 sha=$2 until=$((SECONDS + $3)) id pending
  shift 3
  local ids=("$@")
  [ ${#ids[@]} -gt 0 ] || ids=("${IT_NODES[@]}")
  while :; do
    pending=()
    for id in "${ids[@]}"; do
      [ "$(it_node_sha "$id" "$name")" = "$sha" ] || pending+=("$id")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ $SECONDS -ge $until ]; then
      for id in "${pending[@]}"; do
        it_log "$id: current $(readlink "$IT_DIR/$id/$name/current" 2>/dev/null || echo none), sha $(it_node_sha "$id" "$name")"
        # its last stall report (nd_dl.c: every stripe's parent and stream)
        grep -A 8 "no progress for" "$IT_DIR/$id.log" 2>/dev/null | tail -n 9 >&2 || true
      done
      grep -h "without a parent\|planning it again\|dropped from the chain" "$IT_DIR/sched.log" \
        "$IT_DIR"/o*.log 2>/dev/null | tail -n 5 >&2 || true
      it_fail "${#pending[@]} of ${#ids[@]} nodes do not hold $name $sha"
    fi
    sleep 0.2
  done
}

# Complete versions (v<N> files) ID holds of NAME, ascending.
it_versions_of() {
  local d="$IT_DIR/$1/$2"
  [ -d "$d" ] || return 0
  find "$d" -maxdepth 1 -type f -regex '.*/v[0-9]+' -printf '%f\n' | sed 's/^v//' | sort -n
}

# Bits set in ID's bitmap of NAME vN (chunks durably received so far);
# prints nothing when there is no bitmap (none yet, or the version completed
# and storage removed it, which can happen between any two commands).
it_bitmap_bits() {
  local f="$IT_DIR/$1/$2/v$3.bitmap" bytes
  bytes=$(od -An -v -tu1 -j 64 "$f" 2>/dev/null) || return 0
  echo "$bytes" | tr -s ' ' '\n' | awk 'NF { n = $1; while (n) { c += n % 2; n = int(n / 2) } } END { print c + 0 }'
}

# "PARENT CHILD" for every established connection from one node process to
# another node's listen port (a child fetching from its parent), read from a
# single ss snapshot so that a poll stays cheap on a loaded machine.
it_tree_edges() {
  local id map=""
  for id in "${IT_NODES[@]}"; do
    [ -n "${IT_PID[$id]:-}" ] && map+="$id ${IT_PID[$id]} ${IT_PORT[$id]} "
  done
  ss -Htnp state established 2>/dev/null | awk -v map="$map" '
    BEGIN { n = split(map, f, " "); for (i = 1; i + 2 <= n; i += 3) { by_pid[f[i + 1]] = f[i]; by_port[f[i + 2]] = f[i] } }
    {
      peer = $4; sub(/.*:/, "", peer)
      if (!(peer in by_port) || !match($0, /pid=[0-9]+,/)) next
      pid = substr($0, RSTART + 4, RLENGTH - 5)
      if ((pid in by_pid) && by_pid[pid] != by_port[peer]) print by_port[peer], by_pid[pid]
    }' | sort -u
  return 0
}
