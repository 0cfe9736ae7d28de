#!/usr/bin/env bash
# perf/writes/writes.sh — the write-path benchmark (issue 21), in one run:
#
#  1. appends: acknowledged 100-byte appends per second with 1, 16 and 256
#     changes in flight (writes_bench on libfdclient: inflight_max and async
#     calls), p50 and p99 of each change's acknowledgement latency;
#  2. writes: MB/s of 1 MiB Origin.Write calls at increasing offsets, with
#     1 and 4 in flight, as a ratio to fio's sequential O_DIRECT write in the
#     same directory divided by 3 (the three origins share that disk here);
#  3. bump: a --file-mib (1 GiB) v1 published and held by every node, then
#     4 KiB writes into --pct % (1%) of its chunks, then the time from
#     `fdadmin bump` to every node's <data>/<name>/current being v2 (sha256
#     of each checked against the model afterwards), beside the merge alone
#     (origin logs) and the full publish + fan-out of v1 in the same run;
#  4. the reference: a 3-server ZooKeeper ensemble (Debian's zookeeper 3.8)
#     on 127.0.0.1, zk_bench creating 100-byte sequential znodes with the
#     same 1, 16, 256 in flight; every append figure is printed as a ratio
#     to ZooKeeper's.
#
# Each measurement prints the CPU of the processes that do the work (origins,
# ZooKeeper servers, nodes; /proc/PID/stat) and the disk's busy %, and
# threads.py's account of their threads (on a CPU, waiting for one, io_uring
# workers waiting for the disk), to tell what binds the figure.
#
# The cluster is tests/integration/lib.sh's: fdsched, 3 origins (a chain,
# head o1) and --nodes fdnode processes on loopback, every daemon on port 0
# with a port file, keys and configs under one temp dir in --data-dir. The
# origins run with automatic bumps off (bump_changes, bump_bytes and
# bump_interval_s = 0) so that only the benchmark's bump merges.
#
# usage: writes.sh [--build DIR] [--out DIR] [--quick] [--time-limit SEC]
#                  [--seconds S] [--inflight "1 16 256"] [--write-inflight "1 4"]
#                  [--nodes N] [--file-mib MIB] [--pct PCT] [--fio-mib MIB]
#                  [--data-dir DIR] [--no-zk] [--no-bump] [--bump-timeout SEC] [--keep]
#   --build           build dir holding fdnode, fdsched, fdadmin, writes_bench and
#                     zk_bench (default <repo>/build: scripts/build.sh release)
#   --out DIR         also write the figures as DIR/writes.json (and the report
#                     as DIR/report.txt)
#   --quick           2 s per measurement, a 256 MiB file, fio 256 MiB
#   --time-limit SEC  the whole run stops itself after SEC s (default 1200)
#   --seconds S       length of each measured run (default 5; 1 s warm-up before)
#   --inflight LIST   in-flight counts of the append runs, fdist and ZooKeeper
#   --write-inflight LIST  in-flight counts of the 1 MiB write runs (default "1 4")
#   --nodes N         fdnode processes for the bump (default 4)
#   --file-mib MIB    the bumped file's size (default 1024)
#   --pct PCT         percent of its chunks changed before the bump (default 1)
#   --fio-mib MIB     fio's file (default 1024)
#   --data-dir DIR    where the run's temp dir goes: the disk under test
#                     (default /var/tmp)
#   --no-zk, --no-bump  leave out the ZooKeeper reference, the bump
#   --bump-timeout SEC  the bump fails after SEC s (default 300), or at the
#                     first "merge failed" in an origin's log
#   --keep            keep the temp dir (logs, data) after the run
# Exit status: 0 when every part ran and verified, 1 when one failed (the
# report then says which and why), 124 at the time limit.
set -euo pipefail

WR_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WR_REPO=$(cd "$WR_HERE/../.." && pwd)

WR_ARGS="$*"
wr_usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

build=$WR_REPO/build out='' quick=0 limit=1200 secs='' inflight="1 16 256" winflight="1 4"
nodes=4 file_mib='' pct=1 fio_mib='' data_dir=/var/tmp do_zk=1 do_bump=1 bump_timeout=300
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --time-limit) limit=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --inflight) inflight=$2; shift 2 ;;
    --write-inflight) winflight=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --file-mib) file_mib=$2; shift 2 ;;
    --pct) pct=$2; shift 2 ;;
    --fio-mib) fio_mib=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --no-zk) do_zk=0; shift ;;
    --no-bump) do_bump=0; shift ;;
    --bump-timeout) bump_timeout=$2; shift 2 ;;
    --keep) export IT_KEEP=1; shift ;;
    -h | --help) wr_usage; exit 0 ;;
    *) wr_usage >&2; exit 2 ;;
  esac
done
if [ $quick -eq 1 ]; then
  secs=${secs:-2} file_mib=${file_mib:-256} fio_mib=${fio_mib:-256}
else
  secs=${secs:-5} file_mib=${file_mib:-1024} fio_mib=${fio_mib:-1024}
fi
WB=$build/perf/writes/writes_bench
ZB=$build/perf/writes/zk_bench
[ -x "$WB" ] || { echo "writes.sh: no $WB: build first (scripts/build.sh release)" >&2; exit 2; }
command -v fio >/dev/null || { echo "writes.sh: fio not installed (scripts/deps.sh)" >&2; exit 2; }
mkdir -p "$data_dir"
[ -z "$out" ] || mkdir -p "$out"
out=${out:+$(cd "$out" && pwd)}

export TMPDIR=$data_dir
# lib.sh: the cluster harness (it_*), with its traps and watchdog.
# shellcheck source=../../tests/integration/lib.sh
. "$WR_REPO/tests/integration/lib.sh" "$build"
PL_LIB_DIR=$WR_REPO/perf/lib
# shellcheck source=../lib/machine.sh
. "$PL_LIB_DIR/machine.sh"
# shellcheck source=../lib/disk.sh
. "$PL_LIB_DIR/disk.sh"
# shellcheck source=../lib/result.sh
. "$PL_LIB_DIR/result.sh"
# shellcheck source=../../scripts/zk.sh
. "$WR_HERE/../../scripts/zk.sh"
it_require_cluster

# The origins' config: lib.sh's, plus automatic bumps off.
export IT_ORIGIN_INI=$'bump_changes = 0\nbump_bytes = 0\nbump_interval_s = 0'

WR_FAILED=()
WR_REPORT=
WR_CHILD=''
# The EXIT trap: the measuring child, ZooKeeper, then lib.sh's cleanup of the
# cluster (which takes the exit status from $?). Not under set -e: every
# step runs whatever the one before did.
wr_cleanup() {
  local rc=$?
  set +e
  [ -z "$WR_CHILD" ] || { kill -TERM "$WR_CHILD" 2>/dev/null; wait "$WR_CHILD" 2>/dev/null; }
  [ -z "$WR_THREADS_PID" ] || { kill -TERM "$WR_THREADS_PID" 2>/dev/null; wait "$WR_THREADS_PID" 2>/dev/null; }
  wz_stop
  [ -z "${PL_RESULT_TSV:-}" ] || pl_result_free
  (exit $rc)
  it_cleanup
}

it_init writes "$limit"
trap wr_cleanup EXIT
pl_result_init "$IT_DIR"
WR_REPORT=$IT_DIR/report.txt
: >"$WR_REPORT"

# wr_bg OUT ERR CMD...: runs CMD in the background and waits for it, so that
# a signal (Ctrl-C, the watchdog's SIGTERM) runs the traps at once instead of
# after a foreground command; the cleanup stops it.
wr_bg() {
  local o=$1 e=$2 rc=0
  shift 2
  "$@" >"$o" 2>"$e" &
  WR_CHILD=$!
  wait "$WR_CHILD" || rc=$?
  WR_CHILD=''
  return $rc
}
wr_result() { grep '^result' "$1"; } # the result line of a bench's output

wr_say_indented() { local l; while IFS= read -r l; do wr_say "    $l"; done <<<"$1"; }
wr_say() { printf '%s\n' "$*" | tee -a "$WR_REPORT"; }
wr_now() { date +%s.%N; }
wr_fail() { # PART WHY: a part that could not run or verify; the run goes on
  WR_FAILED+=("$1: $2")
  it_log "FAILED $1: $2"
}
wr_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
wr_ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

# "result k=v ..." -> WR_R[PREFIX.k]=v
declare -A WR_R=()
wr_parse() {
  local prefix=$1 kv
  for kv in $2; do
    [ "$kv" = result ] && continue
    WR_R[$prefix.${kv%%=*}]=${kv#*=}
  done
}

# CPU ticks (user + system) of a process so far; 0 when it is gone.
wr_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0; }
WR_HZ=$(getconf CLK_TCK)
WR_DEV=
# wr_sample_begin LABEL=PID...; wr_sample_end: one "cpu" line (each
# process's % of one core over the measurement) and the disk's busy %.
wr_sample_begin() {
  WR_S_LABELS=() WR_S_PIDS=() WR_S_T0=()
  local a
  for a in "$@"; do
    WR_S_LABELS+=("${a%%=*}")
    WR_S_PIDS+=("${a#*=}")
    WR_S_T0+=("$(wr_ticks "${a#*=}")")
  done
  WR_S_DISK0=""
  [ -z "$WR_DEV" ] || WR_S_DISK0=$(pl_disk_snap "$WR_DEV" || true)
  python3 "$WR_HERE/threads.py" "$@" >"$IT_DIR/threads.out" 2>&1 &
  WR_THREADS_PID=$!
  WR_S_WALL0=$(wr_now)
}
# Stops threads.py (in this shell: wr_sample_end runs in $(...)); its lines
# go to WR_THREADS.
WR_THREADS_PID='' WR_THREADS=''
wr_threads_stop() {
  WR_THREADS=''
  [ -n "$WR_THREADS_PID" ] || return 0
  kill -TERM "$WR_THREADS_PID" 2>/dev/null || true
  wait "$WR_THREADS_PID" 2>/dev/null || true
  WR_THREADS_PID=''
  WR_THREADS=$(cat "$IT_DIR/threads.out")
}
wr_threads_result() { # KEY: the lines into the JSON, LABEL by LABEL
  local l
  while IFS= read -r l; do
    [ -n "$l" ] && pl_result_str "$1.threads.${l%%:*}" "${l#*: }"
  done <<<"$WR_THREADS"
}
wr_sample_drop() { wr_threads_stop; WR_S_PIDS=(); }
wr_sample_end() { # KEY: JSON key prefix; prints the line
  local key=$1 wall i t line="" pct d1 busy=-
  wall=$(awk -v a="$WR_S_WALL0" -v b="$(wr_now)" 'BEGIN { print b - a }')
  for i in "${!WR_S_PIDS[@]}"; do
    t=$(wr_ticks "${WR_S_PIDS[$i]}")
    pct=$(awk -v a="${WR_S_T0[$i]}" -v b="$t" -v hz="$WR_HZ" -v w="$wall" \
      'BEGIN { printf "%.0f", (b - a) / hz / w * 100 }')
    line+="${WR_S_LABELS[$i]} ${pct}% "
    pl_result_num "$key.cpu_pct.${WR_S_LABELS[$i]}" "$pct"
  done
  if [ -n "$WR_S_DISK0" ]; then
    d1=$(pl_disk_snap "$WR_DEV" || true)
    busy=$(awk -v a="$WR_S_DISK0" -v b="$d1" -v w="$wall" \
      'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", (y[3] - x[3]) / (w * 10) }')
    pl_result_num "$key.disk_busy_pct" "$busy"
  fi
  echo "${line}disk ${WR_DEV:-?} busy ${busy}%"
}

# ---------------------------------------------------------------- machine
WR_DEV=$(pl_disk_dev "$IT_DIR" 2>/dev/null || true)
pl_machine_describe "$IT_DIR" | tee -a "$WR_REPORT"
pl_machine_result
pl_result_str run.data_dir "$IT_DIR"
pl_result_str run.command "$0 $WR_ARGS"
pl_result_num run.seconds_per_measurement "$secs"
wr_say "run: $secs s per measurement (1 s warm-up before each), appends in flight: $inflight;" \
  "1 MiB writes in flight: $winflight; bump of a $file_mib MiB file, $pct% of chunks changed, $nodes nodes"

# ---------------------------------------------------------------- fio
# The disk reference: fio's sequential O_DIRECT write of 1 MiB blocks, as
# many in flight as the largest write run, fsync at the end, in the same
# directory the origins write to; the trims of earlier deletes land first.
wmax=$(tr ' ' '\n' <<<"$winflight" | sort -n | tail -1)
sync; sleep 2
it_log "fio: $fio_mib MiB sequential O_DIRECT write, bs 1 MiB, iodepth $wmax, in $IT_DIR"
wr_bg "$IT_DIR/fio.json" "$IT_DIR/fio.err" fio --name=ref --filename="$IT_DIR/fio.dat" --rw=write \
  --bs=1M --iodepth="$wmax" --ioengine=io_uring --direct=1 --size="${fio_mib}M" --end_fsync=1 \
  --output-format=json || it_fail "fio: $(tail -n 2 "$IT_DIR/fio.err" | tr '\n' ' ')"
rm -f "$IT_DIR/fio.dat"
fio_mbs=$(python3 -c "import json; j=json.load(open('$IT_DIR/fio.json')); print('%.1f' % (j['jobs'][0]['write']['bw_bytes'] / 1e6))")
fio3=$(awk -v f="$fio_mbs" 'BEGIN { printf "%.1f", f / 3 }')
pl_result_num fio.write_mb_s "$fio_mbs"
pl_result_num fio.iodepth "$wmax"
pl_result_num fio.write_mb_s_div3 "$fio3"
sync; sleep 2

# ---------------------------------------------------------------- cluster
it_cluster 3 1 1 "$nodes"
# it_cluster waits until the origins know each other's addresses; the chain
# itself forms after that (each origin brings the next up to date, then
# sends it changes), and until it has, a change is refused (fewer than
# min_durable_origins can hold it). Wait for the links o1 -> o2 -> o3.
wr_wait_chain() {
  local until=$((SECONDS + $1)) i o nx
  for i in 0 1; do
    o=${IT_ORIGINS[$i]} nx=${IT_ORIGINS[$((i + 1))]}
    until tail -n +"${IT_LOG_FROM[$o]}" "$IT_DIR/$o.log" | grep -q "origin $nx is up to date: changes go on to it"; do
      [ $SECONDS -lt $until ] || it_fail "the chain did not form in $1 s: $o does not send changes to $nx"
      sleep 0.1
    done
  done
}
wr_wait_chain 60
# The writers write as the harness's writer (a writer key and its
# certificate signed by the admin key), as a real writer would.
O_ARGS=(--origins "$(it_origin_addrs)" --cluster-key "$IT_DIR/cluster.key"
  --key "$IT_DIR/writer.pem" --cert "$IT_DIR/writer.cert")
ORIGIN_PIDS=(o1="${IT_PID[o1]}" o2="${IT_PID[o2]}" o3="${IT_PID[o3]}")

# wr_measure ID JSON_KEY "LABEL=PID..." CMD...: runs one measurement (a
# bench printing a result line) in the background while the listed
# processes' CPU and the disk are sampled; its figures go into WR_R[ID.*]
# and the JSON under JSON_KEY. A run that fails is run once more (a loaded
# machine can stall one run); the report says so and why. 0, or 1 and WR_WHY.
wr_measure() {
  local id=$1 key=$2 pids=$3 try line k
  shift 3
  WR_WHY=''
  for try in 1 2; do
    # shellcheck disable=SC2086 # label=pid words
    wr_sample_begin $pids
    if wr_bg "$IT_DIR/$id.out" "$IT_DIR/$id.err" "$@" && line=$(wr_result "$IT_DIR/$id.out"); then
      wr_parse "$id" "$line"
      wr_threads_stop
      wr_threads_result "$key"
      WR_R[$id.threads]=$WR_THREADS
      WR_R[$id.binds]="$(wr_sample_end "$key"), the bench ${WR_R[$id.cpu_s]} CPU-s"
      for k in ops_s mb_s p50_us p99_us max_us ops seconds cpu_s; do
        pl_result_num "$key.$k" "${WR_R[$id.$k]}"
      done
      if [ -n "$WR_WHY" ]; then
        WR_R[$id.note]="retried after: $WR_WHY"
        pl_result_str "$key.retried_after" "$WR_WHY"
      fi
      return 0
    fi
    wr_sample_drop
    WR_WHY="$(grep -v '^result' "$IT_DIR/$id.err" | tail -n 3 | tr '\n' ' ')"
    it_log "$id failed (try $try of 2): $WR_WHY"
  done
  return 1
}

# ---------------------------------------------------------------- appends
for n in $inflight; do
  it_log "fdist: 100-byte appends, $n in flight, $secs s"
  wr_measure "fa$n" "appends.fdist_inflight_$n" "${ORIGIN_PIDS[*]}" timeout $((secs + 120)) "$WB" \
    "${O_ARGS[@]}" --name "wb-append-$n" --mode append --size 100 --inflight "$n" \
    --seconds "$secs" || wr_fail "appends, $n in flight" "$WR_WHY"
done

# ---------------------------------------------------------------- 1 MiB writes
for n in $winflight; do
  it_log "fdist: 1 MiB writes at increasing offsets, $n in flight, $secs s"
  if wr_measure "fw$n" "writes.inflight_$n" "${ORIGIN_PIDS[*]}" timeout $((secs + 120)) "$WB" \
      "${O_ARGS[@]}" --name "wb-write-$n" --mode write --size 1048576 --inflight "$n" \
      --seconds "$secs"; then
    pl_result_num "writes.inflight_$n.ratio_to_fio_div3" "$(wr_ratio "${WR_R[fw$n.mb_s]}" "$fio3")"
  else
    wr_fail "1 MiB writes, $n in flight" "$WR_WHY"
  fi
done

# ---------------------------------------------------------------- ZooKeeper
if [ $do_zk -eq 1 ]; then
  if [ ! -x "$ZB" ]; then
    wr_fail "ZooKeeper" "zk_bench not built (libzookeeper-mt-dev missing: scripts/deps.sh)"
  elif ! wz_available; then
    wr_fail "ZooKeeper" "java, $WZ_JAR or $WZ_SLF4J missing (scripts/deps.sh: zookeeper)"
  elif ! wz_start "$IT_DIR/zk"; then
    wr_fail "ZooKeeper" "the ensemble did not start: $(tail -n 2 "$IT_DIR"/zk/s1/server.log | tr '\n' ' ')"
  else
    ZK_PIDS=()
    for i in 1 2 3; do
      role=$(wz_mode "${WZ_CPORT[$i]}")
      ZK_PIDS+=("zk$i-$role=${WZ_PID[$i]}")
    done
    # The JVM compiles its hot paths during the first seconds (threads.py
    # showed its C2 compiler thread still at a third of a core 3 s in): one
    # uncounted run of 2 x --seconds at the largest in-flight count first.
    zmax=$(tr ' ' '\n' <<<"$inflight" | sort -n | tail -1)
    it_log "ZooKeeper: warm-up, $((2 * secs)) s at $zmax in flight (not counted)"
    wr_bg /dev/null "$IT_DIR/zk-warm.err" timeout 120 "$ZB" --servers "$WZ_LEADER" --parent /warm \
      --inflight "$zmax" --seconds $((2 * secs)) --warmup-seconds 0 || true
    for n in $inflight; do
      it_log "ZooKeeper: 100-byte sequential creates, $n in flight, $secs s, client on the leader"
      wr_measure "zk$n" "appends.zk_inflight_$n" "${ZK_PIDS[*]}" timeout $((secs + 120)) "$ZB" \
        --servers "$WZ_LEADER" --parent "/bench$n" --size 100 --inflight "$n" --seconds "$secs" ||
        wr_fail "ZooKeeper, $n in flight" "$WR_WHY"
    done
    wz_stop
  fi
fi

# ---------------------------------------------------------------- bump
# Every node's `current` of NAME links to vV: the time each switched is the
# link's own mtime (when the node made it), not when this poll noticed.
wr_wait_version() { # NAME V SECONDS -> 0, or 1 and WR_WHY naming the nodes without it
  local name=$1 v=$2 until=$((SECONDS + $3)) id pending
  while :; do
    pending=()
    for id in "${IT_NODES[@]}"; do
      [ "$(readlink "$IT_DIR/$id/$name/current" 2>/dev/null)" = "v$v" ] ||
        [ "$(readlink "$IT_DIR/$id/$name/current" 2>/dev/null)" = "$IT_DIR/$id/$name/v$v" ] ||
        pending+=("$id")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ $SECONDS -ge $until ]; then
      WR_WHY="not v$v after $3 s: ${pending[*]}"
      return 1
    fi
    sleep 0.05
  done
}
wr_last_switch() { # NAME: the latest mtime of the nodes' current links
  local id t max=0
  for id in "${IT_NODES[@]}"; do
    t=$(stat -c %.9Y "$IT_DIR/$id/$1/current")
    max=$(awk -v a="$max" -v b="$t" 'BEGIN { print (b > a ? b : a) }')
  done
  echo "$max"
}
wr_verify() { # NAME SHA: every node's and origin's current has SHA
  local id bad=()
  for id in "${IT_NODES[@]}" "${IT_ORIGINS[@]}"; do
    [ "$(it_node_sha "$id" "$1")" = "$2" ] || bad+=("$id")
  done
  [ ${#bad[@]} -eq 0 ] || { echo "sha256 differs on ${bad[*]}"; return 1; }
}
# ISO time at the start of a log line -> seconds since the epoch
wr_log_time() { date -d "$(cut -d' ' -f1 <<<"$1" | sed 's/T/ /; s/Z$/ UTC/')" +%s.%N; }

# wr_bump NAME: fdadmin bump, in the background, while the origins' logs are
# watched: a merge that fails is retried by the origin every few seconds and
# the bump would wait for it up to its own timeout, so the first failure
# (its log line) ends the bump here with that error. 0, or 1 and WR_WHY.
# Not run in $(...): the shell would hold a signal's trap until it ended.
WR_WHY=''
wr_bump() {
  local name=$1 from=() o i line until=$((SECONDS + bump_timeout))
  for o in "${IT_ORIGINS[@]}"; do from+=("$(($(wc -l <"$IT_DIR/$o.log") + 1))"); done
  "$FDADMIN" --scheduler "$(it_sched_addr)" --origins "$(it_origin_addrs)" \
    --cluster-key "$IT_DIR/cluster.key" --admin-key "$IT_DIR/admin.pem" bump "$name" \
    >"$IT_DIR/bump.out" 2>"$IT_DIR/bump.err" &
  WR_CHILD=$!
  while kill -0 "$WR_CHILD" 2>/dev/null; do
    for i in "${!IT_ORIGINS[@]}"; do
      o=${IT_ORIGINS[$i]}
      line=$(tail -n +"${from[$i]}" "$IT_DIR/$o.log" | grep -m1 "$name v[0-9]*: the merge failed\|$name v[0-9]*: bump: " || true)
      if [ -n "$line" ]; then
        kill -TERM "$WR_CHILD" 2>/dev/null; wait "$WR_CHILD" 2>/dev/null || true; WR_CHILD=''
        WR_WHY="$o: ${line#* * * * }"
        return 1
      fi
    done
    if [ $SECONDS -ge $until ]; then
      kill -TERM "$WR_CHILD" 2>/dev/null; wait "$WR_CHILD" 2>/dev/null || true; WR_CHILD=''
      WR_WHY="no answer in $bump_timeout s"
      return 1
    fi
    sleep 0.05
  done
  local rc=0
  wait "$WR_CHILD" || rc=$?
  WR_CHILD=''
  [ $rc -eq 0 ] || { WR_WHY=$(cat "$IT_DIR/bump.err" "$IT_DIR/bump.out" | tail -n 3 | tr '\n' ' '); return 1; }
}

if [ $do_bump -eq 1 ]; then
  name=wb-big
  it_log "bump: making a $file_mib MiB v1"
  it_make_file "$IT_DIR/v1" "$file_mib"
  sha1=$(it_sha "$IT_DIR/v1")
  t0=$(wr_now)
  if ! wr_bg "$IT_DIR/publish.out" "$IT_DIR/publish.err" "$FDADMIN" --scheduler "$(it_sched_addr)" \
      --origins "$(it_origin_addrs)" --cluster-key "$IT_DIR/cluster.key" \
      --admin-key "$IT_DIR/admin.pem" publish "$IT_DIR/v1" --name "$name" \
      --chunk-size "$IT_CHUNK" --no-progress; then
    wr_fail bump "publish of v1: $(tail -n 2 "$IT_DIR/publish.err" | tr '\n' ' ')"
  elif ! wr_wait_version "$name" 1 600; then
    wr_fail bump "fan-out of v1: $WR_WHY"
  else
    v1_s=$(awk -v a="$t0" -v b="$(wr_last_switch "$name")" 'BEGIN { printf "%.2f", b - a }')
    if ! why=$(wr_verify "$name" "$sha1"); then
      wr_fail bump "v1: $why"
    else
      pl_result_num bump.v1_publish_to_all_nodes_s "$v1_s"
      # 4 KiB of fresh bytes at a random 4 KiB-aligned offset in PCT% of the
      # chunks (at least one), into a copy of v1: the model of v2.
      cs=$(numfmt --from=iec "$IT_CHUNK")
      nchunks=$(( (file_mib * 1048576 + cs - 1) / cs ))
      k=$(( nchunks * pct / 100 )); [ $k -ge 1 ] || k=1
      # The model starts as a copy of v1, timed: one copy of the file on this
      # disk (copy_file_range, then fsync), the reference for the merge,
      # which copies v1 the same way on each origin (ext4: no reflink).
      t0=$(wr_now)
      cp "$IT_DIR/v1" "$IT_DIR/model"
      sync "$IT_DIR/model"
      copy_s=$(awk -v a="$t0" -v b="$(wr_now)" 'BEGIN { printf "%.3f", b - a }')
      pl_result_num bump.one_copy_s "$copy_s"
      : >"$IT_DIR/patch.list"
      for c in $(shuf -i 0-$((nchunks - 1)) -n "$k" | sort -n); do
        off=$(( c * cs + $(shuf -i 0-$((cs / 4096 - 1)) -n 1) * 4096 ))
        head -c 4096 /dev/urandom | dd of="$IT_DIR/model" bs=4096 seek=$((off / 4096)) conv=notrunc status=none
        echo "$off 4096" >>"$IT_DIR/patch.list"
      done
      sha2=$(it_sha "$IT_DIR/model")
      pl_result_num bump.chunks_total "$nchunks"
      pl_result_num bump.chunks_changed "$k"
      pl_result_num bump.chunk_bytes "$cs"
      it_log "bump: $k 4 KiB writes into $k of $nchunks chunks"
      if ! { wr_bg "$IT_DIR/patch.out" "$IT_DIR/patch.err" timeout 300 "$WB" "${O_ARGS[@]}" \
          --name "$name" --mode patch --inflight 16 --patch-list "$IT_DIR/patch.list" \
          --patch-data "$IT_DIR/model" && line=$(wr_result "$IT_DIR/patch.out"); }; then
        wr_fail bump "the writes: $(tail -n 3 "$IT_DIR/patch.err" | tr '\n' ' ')"
      else
        it_log "bump: fdadmin bump $name"
        bump_pids=()
        for id in "${IT_ORIGINS[@]}" "${IT_NODES[@]}"; do bump_pids+=("$id=${IT_PID[$id]}"); done
        wr_sample_begin "${bump_pids[@]}"
        t0=$(wr_now)
        if ! wr_bump "$name"; then
          wr_sample_drop
          wr_fail bump "fdadmin bump $name: $WR_WHY"
        else
          t1=$(wr_now)
          if ! wr_wait_version "$name" 2 600; then
            wr_sample_drop
            wr_fail bump "fan-out of v2: $WR_WHY"
          else
            t2=$(wr_last_switch "$name")
            wr_threads_stop
            wr_threads_result bump
            WR_R[bump.threads]=$WR_THREADS
            WR_R[bump.binds]=$(wr_sample_end bump)
            if ! why=$(wr_verify "$name" "$sha2"); then
              wr_fail bump "v2 differs from the model: $why"
            else
              bump_cmd_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
              bump_all_s=$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
              # the merge alone: the head's "bump after" to the last origin's
              # "merged ... into" (each origin merges its own copy of the log)
              bl=$(grep -h "$name v2: bump after" "$IT_DIR/o1.log" | tail -1 || true)
              merge_s=-
              if [ -n "$bl" ]; then
                mb=$(wr_log_time "$bl")
                me=0
                for o in "${IT_ORIGINS[@]}"; do
                  ml=$(grep -h "$name v2: merged .* into" "$IT_DIR/$o.log" | tail -1 || true)
                  [ -n "$ml" ] && me=$(awk -v a="$me" -v b="$(wr_log_time "$ml")" 'BEGIN { print (b > a ? b : a) }')
                done
                merge_s=$(awk -v a="$mb" -v b="$me" 'BEGIN { if (b > a) printf "%.3f", b - a; else print "-" }')
              fi
              # each origin's own account of its merge (storage's log line)
              WR_R[bump.merges]=''
              for o in "${IT_ORIGINS[@]}"; do
                ml=$(grep -h "$name v2 merged from v1:" "$IT_DIR/$o.log" | tail -1 || true)
                [ -n "$ml" ] || continue
                WR_R[bump.merges]+="    $o: ${ml#*merged from v1: }"$'\n'
                pl_result_str "bump.merge_log.$o" "${ml#*merged from v1: }"
              done
              WR_R[bump.cmd_s]=$bump_cmd_s WR_R[bump.all_s]=$bump_all_s WR_R[bump.merge_s]=$merge_s
              WR_R[bump.v1_s]=$v1_s WR_R[bump.k]=$k WR_R[bump.n]=$nchunks WR_R[bump.out]=$(head -n 1 "$IT_DIR/bump.out")
              pl_result_num bump.bump_to_committed_s "$bump_cmd_s"
              pl_result_num bump.bump_to_all_nodes_s "$bump_all_s"
              [ "$merge_s" = - ] || pl_result_num bump.merge_s "$merge_s"
              pl_result_num bump.ratio_to_v1_publish "$(wr_ratio "$bump_all_s" "$v1_s")"
              pl_result_str bump.fdadmin_output "${WR_R[bump.out]}"
            fi
          fi
        fi
      fi
    fi
  fi
fi

# ---------------------------------------------------------------- report
wr_say ""
wr_say "== write path, 3 origins on loopback (fdist $(git -C "$WR_REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
wr_say "appends of 100 B, acknowledged once every live origin fdatasync'd (fdist) /"
wr_say "a quorum of 2 of 3 fsync'd (ZooKeeper 3.8, sequential creates, client on the leader):"
printf '%-9s %12s %9s %9s | %12s %9s %9s | %8s %8s %8s\n' "inflight" "fdist ops/s" "p50 ms" "p99 ms" \
  "ZK ops/s" "p50 ms" "p99 ms" "x ops/s" "x p50" "x p99" | tee -a "$WR_REPORT"
for n in $inflight; do
  f_ops=${WR_R[fa$n.ops_s]:-} z_ops=${WR_R[zk$n.ops_s]:-}
  printf '%-9s %12s %9s %9s | %12s %9s %9s | %8s %8s %8s\n' "$n" \
    "${f_ops:-FAILED}" "$([ -n "$f_ops" ] && wr_ms "${WR_R[fa$n.p50_us]}" || echo -)" \
    "$([ -n "$f_ops" ] && wr_ms "${WR_R[fa$n.p99_us]}" || echo -)" \
    "${z_ops:-"-"}" "$([ -n "$z_ops" ] && wr_ms "${WR_R[zk$n.p50_us]}" || echo -)" \
    "$([ -n "$z_ops" ] && wr_ms "${WR_R[zk$n.p99_us]}" || echo -)" \
    "$([ -n "$f_ops$z_ops" ] && wr_ratio "${f_ops:-0}" "${z_ops:-0}" || echo -)" \
    "$([ -n "$f_ops$z_ops" ] && wr_ratio "${WR_R[fa$n.p50_us]:-0}" "${WR_R[zk$n.p50_us]:-0}" || echo -)" \
    "$([ -n "$f_ops$z_ops" ] && wr_ratio "${WR_R[fa$n.p99_us]:-0}" "${WR_R[zk$n.p99_us]:-0}" || echo -)" |
    tee -a "$WR_REPORT"
  if [ -n "$f_ops" ] && [ -n "$z_ops" ]; then
    pl_result_num "appends.ratio_inflight_$n.ops_s" "$(wr_ratio "$f_ops" "$z_ops")"
    pl_result_num "appends.ratio_inflight_$n.p50" "$(wr_ratio "${WR_R[fa$n.p50_us]}" "${WR_R[zk$n.p50_us]}")"
    pl_result_num "appends.ratio_inflight_$n.p99" "$(wr_ratio "${WR_R[fa$n.p99_us]}" "${WR_R[zk$n.p99_us]}")"
  fi
done
wr_say "(x: fdist / ZooKeeper; above 1 is better for ops/s, below 1 is better for latency)"
for n in $inflight; do
  [ -z "${WR_R[fa$n.binds]:-}" ] || wr_say "cpu, fdist appends $n in flight: ${WR_R[fa$n.binds]}"
  [ -z "${WR_R[fa$n.threads]:-}" ] || wr_say_indented "${WR_R[fa$n.threads]}"
  [ -z "${WR_R[fa$n.note]:-}" ] || wr_say "  (${WR_R[fa$n.note]})"
  [ -z "${WR_R[zk$n.binds]:-}" ] || wr_say "cpu, ZooKeeper $n in flight: ${WR_R[zk$n.binds]}"
  [ -z "${WR_R[zk$n.threads]:-}" ] || wr_say_indented "${WR_R[zk$n.threads]}"
  [ -z "${WR_R[zk$n.note]:-}" ] || wr_say "  (${WR_R[zk$n.note]})"
done
wr_say ""
wr_say "1 MiB writes at increasing offsets; reference fio O_DIRECT sequential write, bs 1 MiB," \
  "iodepth $wmax, same dir: $fio_mbs MB/s, / 3 origins = $fio3 MB/s"
printf '%-9s %10s %9s %9s %12s\n' "inflight" "MB/s" "p50 ms" "p99 ms" "x fio/3" | tee -a "$WR_REPORT"
for n in $winflight; do
  if [ -n "${WR_R[fw$n.mb_s]:-}" ]; then
    printf '%-9s %10s %9s %9s %12s\n' "$n" "${WR_R[fw$n.mb_s]}" "$(wr_ms "${WR_R[fw$n.p50_us]}")" \
      "$(wr_ms "${WR_R[fw$n.p99_us]}")" "$(wr_ratio "${WR_R[fw$n.mb_s]}" "$fio3")" | tee -a "$WR_REPORT"
  else
    printf '%-9s %10s\n' "$n" FAILED | tee -a "$WR_REPORT"
  fi
done
for n in $winflight; do
  [ -z "${WR_R[fw$n.binds]:-}" ] || wr_say "cpu, 1 MiB writes $n in flight: ${WR_R[fw$n.binds]}"
  [ -z "${WR_R[fw$n.threads]:-}" ] || wr_say_indented "${WR_R[fw$n.threads]}"
  [ -z "${WR_R[fw$n.note]:-}" ] || wr_say "  (${WR_R[fw$n.note]})"
done
wr_say ""
if [ -n "${WR_R[bump.all_s]:-}" ]; then
  wr_say "bump of a $file_mib MiB file with ${WR_R[bump.k]} of ${WR_R[bump.n]} chunks ($pct%) changed, $nodes nodes:"
  wr_say "  fdadmin bump -> committed on every origin: ${WR_R[bump.cmd_s]} s  (fdadmin: ${WR_R[bump.out]})"
  wr_say "  of which the merge alone (head's bump to last origin merged, logs): ${WR_R[bump.merge_s]} s;" \
    "reference, one copy of the file on this disk (cp + fsync): $copy_s s"
  [ -z "${WR_R[bump.merges]}" ] || printf '%s' "${WR_R[bump.merges]}" | tee -a "$WR_REPORT"
  wr_say "  fdadmin bump -> every node's current is v2 (sha256 verified after): ${WR_R[bump.all_s]} s"
  wr_say "  reference, same run: publish of v1 -> every node's current is v1: ${WR_R[bump.v1_s]} s" \
    "(bump / full publish = $(wr_ratio "${WR_R[bump.all_s]}" "${WR_R[bump.v1_s]}"))"
  wr_say "  cpu, bump to every node: ${WR_R[bump.binds]}"
  [ -z "${WR_R[bump.threads]:-}" ] || wr_say_indented "${WR_R[bump.threads]}"
elif [ $do_bump -eq 1 ]; then
  wr_say "bump: FAILED (below)"
fi
wr_say ""
wr_say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here)"
pl_result_str machine.loadavg_at_end "$(cut -d' ' -f1-3 /proc/loadavg)"
if [ ${#WR_FAILED[@]} -gt 0 ]; then
  wr_say ""
  for f in "${WR_FAILED[@]}"; do wr_say "FAILED: $f"; done
  pl_result_str failed "$(printf '%s; ' "${WR_FAILED[@]}")"
fi
pl_result_bool ok "$([ ${#WR_FAILED[@]} -eq 0 ] && echo true || echo false)"
if [ -n "$out" ]; then
  pl_result_write "$out/writes.json"
  cp "$WR_REPORT" "$out/report.txt"
  it_log "wrote $out/writes.json and $out/report.txt"
fi
[ ${#WR_FAILED[@]} -eq 0 ]
