# shellcheck shell=bash
# scripts/zk.sh — ZooKeeper servers on 127.0.0.1 for the tests, the demo and
# perf/ (functions only; sourced by tests/integration/lib.sh, scripts/demo.sh,
# perf/writes/writes.sh).
#   wz_start DIR [N]  starts servers 1..N (N = 1, a standalone server, or 3,
#                     an ensemble; default 3) from Debian's zookeeper package
#                     (3.8: QuorumPeerMain on /usr/share/java/zookeeper.jar),
#                     each with its own config, myid, data dir and log under
#                     DIR; waits until the ensemble serves (a leader and N-1
#                     followers, or a standalone server). Sets WZ_CONNECT
#                     (every client port), WZ_LEADER (the leader's H:P),
#                     WZ_PID[1..N] and WZ_CPORT[1..N].
#   wz_kill I / wz_restart I  SIGKILLs server I / starts it again (same ports,
#                     same data dir), for the failover tests.
#   wz_stop           SIGTERM, 10 s, SIGKILL, for every server it started.
#   wz_mode PORT      "leader", "follower"... of the server on PORT (srvr).
#
# Ports: ZooKeeper takes fixed ports from its config (clientPort, and the
# quorum and election ports of every server.N line) and cannot be told to
# bind port 0 and report what it got: the quorum ports must be known to the
# other servers before they start, and nothing writes the ports back. So
# wz_start asks the kernel for free ports (binds port 0, reads the port,
# closes) just before writing the configs, and when a server then finds one
# taken (another process got it in between: "Address already in use" in its
# log) or the ensemble does not form, it stops the servers and starts again
# with fresh ports, WZ_START_TRIES times.
#
# The data dir holds both the snapshots and the transaction log (dataDir
# only), on the same disk as the origins' data: forceSync=yes (the default)
# makes every write wait for an fsync of the log, as fdist's origins
# fdatasync theirs. The admin server (Jetty) is off; the four-letter words
# srvr and ruok are whitelisted so that wz_start can see the leader.

WZ_JAR=${WZ_JAR:-/usr/share/java/zookeeper.jar}
WZ_SLF4J=${WZ_SLF4J:-/usr/share/java/slf4j-simple.jar}
WZ_HEAP=${WZ_HEAP:-512m}
WZ_START_TRIES=${WZ_START_TRIES:-3}
WZ_UP_SECONDS=${WZ_UP_SECONDS:-60}
WZ_DIR=
WZ_CONNECT=
WZ_LEADER=
declare -a WZ_PID=()
declare -a WZ_CPORT=()

wz_log() { printf '%s [zk] %s\n' "$(date -u +%H:%M:%S.%3N)" "$*" >&2; }

wz_available() {
  command -v java >/dev/null && [ -r "$WZ_JAR" ] && [ -r "$WZ_SLF4J" ]
}

# N free TCP ports on 127.0.0.1, all bound at once so that they differ.
wz_free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# wz_4lw PORT WORD: the server's answer to a four-letter word, "" when none.
wz_4lw() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf %s "$1" >&3 && cat <&3' "$1" "$2" \
    2>/dev/null || true
}

wz_mode() { wz_4lw "$1" srvr | awk -F': ' '/^Mode:/ { print $2 }'; }

wz_stop() {
  local i until
  [ "${#WZ_PID[@]}" -gt 0 ] || return 0
  for i in "${!WZ_PID[@]}"; do kill -TERM "${WZ_PID[$i]}" 2>/dev/null || true; done
  until=$((SECONDS + 10))
  for i in "${!WZ_PID[@]}"; do
    while kill -0 "${WZ_PID[$i]}" 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.1; done
    kill -KILL "${WZ_PID[$i]}" 2>/dev/null || true
    wait "${WZ_PID[$i]}" 2>/dev/null || true
  done
  WZ_PID=()
}

WZ_N=3

# Server i's JVM, appending to its log.
wz_run() {
  local dir=$WZ_DIR i=$1
  java -Xmx"$WZ_HEAP" -Xms64m -XX:+UseSerialGC \
    -Dzookeeper.log.dir="$dir/s$i" -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp "$WZ_JAR:$WZ_SLF4J" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/s$i/zoo.cfg" \
    </dev/null >>"$dir/s$i/server.log" 2>&1 &
  WZ_PID[i]=$!
}

wz_kill() {
  kill -KILL "${WZ_PID[$1]}" 2>/dev/null || true
  wait "${WZ_PID[$1]}" 2>/dev/null || true
  wz_log "server $1 killed"
}

wz_restart() {
  wz_run "$1"
  wz_log "server $1 started again (pid ${WZ_PID[$1]})"
}

# One try: fresh ports, configs, start, wait. 0 when the ensemble is up.
wz_try() {
  local dir=$1 i ports p until leader followers n=$WZ_N
  read -r -a ports < <(wz_free_ports $((n * 3)))
  WZ_CPORT=()
  for i in $(seq 1 "$n"); do
    WZ_CPORT[i]=${ports[$(( (i - 1) * 3 ))]}
    rm -rf "$dir/s$i"
    mkdir -p "$dir/s$i/data"
    echo "$i" >"$dir/s$i/data/myid"
    {
      echo "tickTime=500"
      echo "initLimit=40"
      echo "syncLimit=6"
      echo "dataDir=$dir/s$i/data"
      echo "clientPort=${WZ_CPORT[$i]}"
      echo "clientPortAddress=127.0.0.1"
      echo "maxClientCnxns=64"
      echo "admin.enableServer=false"
      echo "4lw.commands.whitelist=srvr,ruok"
      echo "preAllocSize=16384"
      echo "autopurge.purgeInterval=0"
      if [ "$n" -gt 1 ]; then
        for p in $(seq 1 "$n"); do
          echo "server.$p=127.0.0.1:${ports[$(( (p - 1) * 3 + 1 ))]}:${ports[$(( (p - 1) * 3 + 2 ))]}"
        done
      fi
    } >"$dir/s$i/zoo.cfg"
  done
  for i in $(seq 1 "$n"); do wz_run "$i"; done
  until=$((SECONDS + WZ_UP_SECONDS))
  while [ $SECONDS -lt $until ]; do
    for i in $(seq 1 "$n"); do
      if ! kill -0 "${WZ_PID[$i]}" 2>/dev/null; then
        wz_log "server $i exited: $(tail -n 3 "$dir/s$i/server.log" | tr '\n' ' ')"
        return 1
      fi
      if grep -q "Address already in use" "$dir/s$i/server.log"; then
        wz_log "server $i: a port was taken between the check and the bind"
        return 1
      fi
    done
    leader='' followers=0
    for i in $(seq 1 "$n"); do
      case $(wz_mode "${WZ_CPORT[$i]}") in
        leader | standalone) leader=127.0.0.1:${WZ_CPORT[$i]} ;;
        follower) followers=$((followers + 1)) ;;
      esac
    done
    if [ -n "$leader" ] && [ $followers -eq $((n - 1)) ]; then
      WZ_LEADER=$leader
      WZ_CONNECT=
      for i in $(seq 1 "$n"); do WZ_CONNECT=${WZ_CONNECT:+$WZ_CONNECT,}127.0.0.1:${WZ_CPORT[$i]}; done
      return 0
    fi
    sleep 0.5
  done
  wz_log "no leader and $((n - 1)) followers after $WZ_UP_SECONDS s"
  return 1
}

wz_start() {
  WZ_DIR=$1
  WZ_N=${2:-3}
  local t
  mkdir -p "$WZ_DIR"
  for t in $(seq 1 "$WZ_START_TRIES"); do
    if wz_try "$WZ_DIR"; then
      wz_log "ensemble up (try $t): leader $WZ_LEADER, servers $WZ_CONNECT"
      return 0
    fi
    wz_stop
  done
  wz_log "ensemble did not start in $WZ_START_TRIES tries (logs in $WZ_DIR/s*/server.log)"
  return 1
}
