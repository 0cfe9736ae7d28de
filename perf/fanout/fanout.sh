#!/usr/bin/env bash
# perf/fanout/fanout.sh — the fan-out benchmark (issue 7) and its emulated network.
#
# usage: fanout.sh [MODE] [FLAGS]
#
# Modes (default: the fdist run):
#   (none)        the fan-out run (daemons.sh): fdsched, origins and N fdnode
#                 processes, each in its own namespace; publish --size bytes
#                 with fdadmin, T until every live node's current is the
#                 version, sha256 of every node against the source, the full
#                 report, JSON (fdist.json) and PNG; --kill and --delta as
#                 below. Without the binaries in --build-dir it exits 3,
#                 creating nothing. FT_POOL_BUFFERS (default 8 x stripes + 16, at least 32) sizes each
#                 node's buffer pool, FT_WINDOW_CHUNKS (default 0: fdnode's
#                 own, 4) its receive window in chunks; a failed run (or any, with
#                 FT_KEEP_LOGS=1) keeps the daemons' logs in <out>/logs.
#   --validate    build the topology, prove it: reachability of every host
#                 from every host, the iperf3 loopback reference, one flow
#                 same-zone / cross-zone / cross-region against its path's cap,
#                 many-to-one and one-to-many against the node NIC cap, and a
#                 ring of all nodes at once (can this machine carry every NIC
#                 at full rate?), each with bytes per link class and CPU use;
#                 remove the topology. Exit 0 only if every check passes
#                 (a machine-limited ring is reported, not failed).
#   --up          build the topology, print it, keep it until --time-limit or
#                 Ctrl-C (for poking at it with `ip netns exec`), remove it.
#   --star        reference fan-out without fdist: origin o0 sends --size bytes
#                 straight to every node at once (one iperf3 -R -n flow per
#                 node), so T is about N*S/B and efficiency about 1/N — the
#                 star that fdist's trees must beat. Prints the full report
#                 (T, S/B, efficiency, per-node times, bytes per link class,
#                 CPU-s per GB) and writes JSON and the PNG, like the fdist run.
#   --plan        print the address plan and the S/B bound; needs no root.
#   --cleanup     remove leftovers of earlier runs: every namespace and /tmp
#                 dir named fdfan-<pid>-* (and fdist data dir in --data-dir)
#                 whose run <pid> is no longer alive
#                 (with --force also live runs'), after stopping the processes
#                 in those namespaces.
#   --help        this text.
#
# Topology flags:
#   --nodes N             fdnode namespaces (default 8; --validate: 12)
#   --regions R           regions (default 2)
#   --zones Z             zones per region (default 2)
#   --rate MBIT           node NIC cap, both directions (default 400)
#   --zone-link-rate MBIT    zone <-> region link cap, both directions
#                            (default 1000; --validate: 300, so it binds)
#   --region-link-rate MBIT  region <-> core link cap, both directions
#                            (default 1000; --validate: 200, so it binds)
#   --origins K           origin namespaces (default 3)
#   --origin-rate MBIT    origin NIC cap (default: --rate)
#   --origin-link-rate MBIT  origin zone <-> core link cap (default 0)
#   --qdisc tbf|htb       shaper (default tbf)
#   A rate of 0 means unshaped. Caps are egress shaping on both ends of
#   each veth, so each holds in both directions.
#
# Run flags:
#   --size BYTES          version size; suffixes K M G T (10^3..) or KiB MiB GiB TiB
#                         (default 256M)
#   --chunk BYTES         chunk size, a power of two >= 4096 (default 4MiB)
#   --stripes K           stripes per version (default 4)
#   --kill N              kill N nodes at random moments mid-transfer (default 0;
#                         also works with --star)
#   --seed N              seed for --kill's and --slow's choices, to repeat a run
#   --slow N:FACTOR       stragglers (issue 23): N random nodes (drawn from
#                         --seed before --kill's choices) get a NIC of
#                         --rate / FACTOR, both directions (their veth's tbf
#                         on both ends, as --rate); they still report the
#                         same nic_bps, so only fdsched's measurements can
#                         tell. The report then gives each slow node's time
#                         against its own bound FACTOR x S/B (target 1.15 x)
#                         and every other node's against (S/B)/0.88, and
#                         fdsched's straggler decisions (default 0:1, none)
#   --cap MBIT            every node's own rate cap (fdnode upload_bps_max and
#                         download_bps_max), below --rate; the report then
#                         gives each node's rate (S over its own download
#                         time, from its order to its version complete, as
#                         its log says) against the cap (default 0: none)
#   --upload-cap MBIT     the nodes' upload cap alone (default: --cap), e.g.
#                         above --cap so the download caps are what binds
#   --delta PCT           then publish a second version with PCT% of chunks
#                         changed (default 0 = no second version)
#   --build-dir DIR       where fdnode/fdsched/fdadmin are (default <repo>/build)
#   --data-dir DIR        where node data dirs go (default /var/tmp); the plan
#                         prints how many nodes of --size its free space holds
#   --fs host|xfs         host (default): data dirs on --data-dir's own
#                         filesystem; xfs: on an XFS with reflink made for the
#                         run in a sparse image file in --data-dir (loop
#                         device with direct I/O, so the same disk does the
#                         work), where a --delta version clones its unchanged
#                         chunks instead of copying them. Needs xfsprogs.
#
# Common flags:
#   --time-limit SEC      the whole run stops itself after SEC s (default 600)
#   --val-seconds SEC     length of each iperf3 measurement (default 3, plus 1 s
#                         omitted ramp-up)
#   --out DIR             results directory (default
#                         <repo>/perf/results/fanout-<UTC time>-<mode>)
#
# The budget: every mode that builds a topology first prints what it needs
# (perf/fanout/budget.py: memory per fdnode, measured by starting one with
# the run's chunk_buf and pool_buffers in an anonymous network namespace,
# the origins, fdsched, fdadmin or iperf3, kernel allowances per namespace
# and per node; data on disk: (nodes + origins + the source) x size x
# versions; a data dir on tmpfs counts as memory too) against 80% of
# MemAvailable and 90% of the data dir's free space, and when either does
# not fit it says how many nodes or what --size would, and exits 4,
# having created nothing. --plan prints the same from the formula.
#
# Everything the run creates lives in network namespaces named
# fdfan-<pid>-<random>-*; a trap removes them (and stops every process in
# them) on exit, on error, on SIGINT/SIGTERM/SIGHUP and at the time limit.
# Nothing is created in the host's own namespace. Needs root, iproute2,
# iperf3 (--validate), python3 (reachability probe, iperf3 and JSON
# parsing) and gnuplot (plots).
set -euo pipefail

FT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FT_REPO=$(cd "$FT_HERE/../.." && pwd)
PL_LIB_DIR=$FT_REPO/perf/lib
# shellcheck source=../lib/machine.sh
. "$PL_LIB_DIR/machine.sh"
# shellcheck source=../lib/cpu.sh
. "$PL_LIB_DIR/cpu.sh"
# shellcheck source=../lib/result.sh
. "$PL_LIB_DIR/result.sh"
# shellcheck source=../lib/plot.sh
. "$PL_LIB_DIR/plot.sh"
# shellcheck source=../lib/disk.sh
. "$PL_LIB_DIR/disk.sh"
# shellcheck source=netns.sh
. "$FT_HERE/netns.sh"
# shellcheck source=report.sh
. "$FT_HERE/report.sh"
# shellcheck source=chaos.sh
. "$FT_HERE/chaos.sh"
# shellcheck source=validate.sh
. "$FT_HERE/validate.sh"
# shellcheck source=daemons.sh
. "$FT_HERE/daemons.sh"

ft_usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
ft_die() { echo "fanout: $*" >&2; exit 2; }

# Bytes from "256M", "1GiB", "4096"...: K M G T are powers of 10, KiB..TiB of 2.
ft_bytes() {
  local v=$1 n u
  [[ $v =~ ^([0-9]+)([KMGT]?(iB|B)?)$ ]] || ft_die "not a size: $v"
  n=${BASH_REMATCH[1]}; u=${BASH_REMATCH[2]}
  case "$u" in
    ""|B) echo "$n" ;;
    K|KB) echo $((n * 1000)) ;;       KiB) echo $((n << 10)) ;;
    M|MB) echo $((n * 1000000)) ;;    MiB) echo $((n << 20)) ;;
    G|GB) echo $((n * 1000000000)) ;; GiB) echo $((n << 30)) ;;
    T|TB) echo $((n * 1000000000000)) ;; TiB) echo $((n << 40)) ;;
    *) ft_die "unknown size unit in $v" ;;
  esac
}

ft_uint() { [[ $2 =~ ^[0-9]+$ ]] || ft_die "$1 needs a non-negative integer, got '$2'"; echo "$2"; }

# ---- flags -----------------------------------------------------------------
FT_MODE=run
FT_NODES='' FT_REGIONS=2 FT_ZONES=2 FT_RATE=400
FT_ZONE_LINK_RATE='' FT_REGION_LINK_RATE='' FT_ORIGINS=3 FT_ORIGIN_RATE='' FT_ORIGIN_LINK_RATE=0
FT_QDISC=tbf FT_SIZE=256000000 FT_CHUNK=$((4 << 20)) FT_STRIPES=4 FT_KILL=0 FT_DELTA=0 FT_CAP=0 FT_UPLOAD_CAP=''
FT_SLOW_N=0 FT_SLOW_FACTOR=1
FT_BUILD_DIR=$FT_REPO/build FT_DATA_DIR=/var/tmp FT_FS=host FT_TIME_LIMIT=600 FT_VAL_SECONDS=3 FT_OUT='' FT_FORCE=0

while [ $# -gt 0 ]; do
  flag=$1
  case "$flag" in
    --help|-h) ft_usage; exit 0 ;;
    --validate) FT_MODE=validate; shift; continue ;;
    --up) FT_MODE=up; shift; continue ;;
    --plan) FT_MODE=plan; shift; continue ;;
    --star) FT_MODE=star; shift; continue ;;
    --cleanup) FT_MODE=cleanup; shift; continue ;;
    --force) FT_FORCE=1; shift; continue ;;
  esac
  [ $# -ge 2 ] || ft_die "$flag needs a value (see --help)"
  val=$2; shift 2
  case "$flag" in
    --nodes) FT_NODES=$(ft_uint "$flag" "$val") ;;
    --regions) FT_REGIONS=$(ft_uint "$flag" "$val") ;;
    --zones) FT_ZONES=$(ft_uint "$flag" "$val") ;;
    --rate) FT_RATE=$(ft_uint "$flag" "$val") ;;
    --zone-link-rate) FT_ZONE_LINK_RATE=$(ft_uint "$flag" "$val") ;;
    --region-link-rate) FT_REGION_LINK_RATE=$(ft_uint "$flag" "$val") ;;
    --origins) FT_ORIGINS=$(ft_uint "$flag" "$val") ;;
    --origin-rate) FT_ORIGIN_RATE=$(ft_uint "$flag" "$val") ;;
    --origin-link-rate) FT_ORIGIN_LINK_RATE=$(ft_uint "$flag" "$val") ;;
    --qdisc) [[ $val == tbf || $val == htb ]] || ft_die "--qdisc is tbf or htb"; FT_QDISC=$val ;;
    --size) FT_SIZE=$(ft_bytes "$val") ;;
    --chunk) FT_CHUNK=$(ft_bytes "$val") ;;
    --stripes) FT_STRIPES=$(ft_uint "$flag" "$val") ;;
    --kill) FT_KILL=$(ft_uint "$flag" "$val") ;;
    --slow)
      [[ $val =~ ^([0-9]+):([0-9]+)$ ]] || ft_die "--slow is N:FACTOR (integers), got '$val'"
      FT_SLOW_N=${BASH_REMATCH[1]} FT_SLOW_FACTOR=${BASH_REMATCH[2]} ;;
    --seed) RANDOM=$(ft_uint "$flag" "$val") ;;
    --delta) FT_DELTA=$(ft_uint "$flag" "$val") ;;
    --cap) FT_CAP=$(ft_uint "$flag" "$val") ;;
    --upload-cap) FT_UPLOAD_CAP=$(ft_uint "$flag" "$val") ;;
    --build-dir) FT_BUILD_DIR=$val ;;
    --data-dir) FT_DATA_DIR=$val ;;
    --fs) [[ $val == host || $val == xfs ]] || ft_die "--fs is host or xfs"; FT_FS=$val ;;
    --time-limit) FT_TIME_LIMIT=$(ft_uint "$flag" "$val") ;;
    --val-seconds) FT_VAL_SECONDS=$(ft_uint "$flag" "$val") ;;
    --out) FT_OUT=$val ;;
    *) ft_die "unknown flag $flag (see --help)" ;;
  esac
done

# Mode-dependent defaults: validation makes every link cap the binding one
# on its own path, so each is measured.
if [ "$FT_MODE" = validate ]; then
  : "${FT_NODES:=12}" "${FT_ZONE_LINK_RATE:=300}" "${FT_REGION_LINK_RATE:=200}"
else
  : "${FT_NODES:=8}" "${FT_ZONE_LINK_RATE:=1000}" "${FT_REGION_LINK_RATE:=1000}"
fi
: "${FT_ORIGIN_RATE:=$FT_RATE}"
[ "$FT_SIZE" -gt 0 ] || ft_die "--size must be > 0"
if [ "$FT_CHUNK" -lt 4096 ] || [ $((FT_CHUNK & (FT_CHUNK - 1))) -ne 0 ]; then ft_die "--chunk must be a power of two >= 4096"; fi
[ "$FT_STRIPES" -ge 1 ] || ft_die "--stripes must be >= 1"
ft_d_pool_default "$FT_STRIPES"
[ "$FT_KILL" -lt "$FT_NODES" ] || ft_die "--kill must be below --nodes"
[ "$FT_SLOW_N" -le "$FT_NODES" ] || ft_die "--slow N must be at most --nodes"
if [ "$FT_SLOW_N" -gt 0 ]; then
  [ "$FT_SLOW_FACTOR" -ge 1 ] || ft_die "--slow FACTOR must be >= 1"
  [ "$FT_RATE" -gt 0 ] || ft_die "--slow needs a shaped --rate"
fi
[ "$FT_DELTA" -le 100 ] || ft_die "--delta is a percentage, 0..100"
if [ "$FT_CAP" -gt 0 ] && [ "$FT_RATE" -gt 0 ] && [ "$FT_CAP" -ge "$FT_RATE" ]; then
  ft_die "--cap must be below --rate (the NIC), or it never binds"
fi
: "${FT_UPLOAD_CAP:=$FT_CAP}"
[ "$FT_CAP" -gt 0 ] || [ "$FT_UPLOAD_CAP" -eq 0 ] || ft_die "--upload-cap needs --cap"
[ "$FT_TIME_LIMIT" -ge 10 ] || ft_die "--time-limit must be >= 10 s"
if [ "$FT_VAL_SECONDS" -lt 1 ] || [ "$FT_VAL_SECONDS" -gt 60 ]; then ft_die "--val-seconds must be 1..60"; fi

# The lower bound of the run: every node must receive S bytes through its
# own NIC, so no schedule beats S/B with B the node NIC rate.
ft_bound_print() {
  awk -v s="$FT_SIZE" -v r="$FT_RATE" -v c="$FT_CHUNK" -v k="$FT_STRIPES" -v n="$FT_NODES" \
      -v kill="$FT_KILL" -v d="$FT_DELTA" 'BEGIN {
    printf "run: S = %.0f bytes (%.3f GB) in %d chunks of %d bytes, %d stripes, %d nodes, --kill %d, --delta %d%%\n",
           s, s / 1e9, int((s + c - 1) / c), c, k, n, kill, d
    if (r > 0) printf "run: B = %d Mbit/s node NIC, lower bound S/B = %.2f s (efficiency = (S/B)/T)\n", r, s * 8 / (r * 1e6)
  }'
}

# ft_budget MODE: what the run needs in memory and on disk against
# MemAvailable and the data dir's free space (perf/fanout/budget.py, which
# in the run mode measures one fdnode with the run's settings first); exits
# 4 with its suggestion when the run does not fit, before anything is
# created. --plan prints the same from the formula (no probe, no root).
FT_BUDGET_OUT=''
ft_budget() {
  local mode=$1 versions=1 probe=() st=0
  [ "$FT_DELTA" -eq 0 ] || versions=2
  [ "$mode" != run ] || [ "$(id -u)" -ne 0 ] || probe=(--probe --build-dir "$FT_BUILD_DIR")
  FT_BUDGET_OUT=$(python3 "$FT_HERE/budget.py" --mode "$mode" --nodes "$FT_NODES" --origins "$FT_ORIGINS" \
    --namespaces $((3 + FT_ORIGINS + FT_REGIONS + FT_REGIONS * FT_ZONES + FT_NODES)) \
    --size "$FT_SIZE" --chunk "$FT_CHUNK" --pool-buffers "$FT_POOL_BUFFERS" \
    --origin-pool-buffers "$FT_ORIGIN_POOL_BUFFERS" --window-chunks "$FT_WINDOW_CHUNKS" \
    --versions "$versions" --data-dir "$FT_DATA_DIR" --fs "$FT_FS" "${probe[@]}") || st=$?
  sed '/^json:$/,$d' <<<"$FT_BUDGET_OUT"
  if [ "$st" -eq 1 ] && [ "$mode" != plan ]; then
    echo "fanout: not enough memory or disk for this run (budget above); nothing was created." >&2
    exit 4
  fi
  [ "$st" -le 1 ] || ft_die "budget.py failed (exit $st)"
}

# ft_budget_result: the budget's figures into the run's JSON.
ft_budget_result() {
  local line
  sed '1,/^json:$/d' <<<"$FT_BUDGET_OUT" | while read -r line; do
    pl_result_num "${line% *}" "${line#* }"
  done
}

# ft_fs_remove_at MNT: unmounts MNT, detaches the loop devices of MNT.img
# and removes both (this run's at exit, a dead run's from --cleanup).
ft_fs_remove_at() {
  local mnt=$1
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true; fi
  [ ! -d "$mnt" ] || rmdir "$mnt" 2>/dev/null || true
  if [ -f "$mnt.img" ]; then
    losetup -j "$mnt.img" | cut -d: -f1 | xargs -r -n1 losetup -d 2>/dev/null || true
    rm -f "$mnt.img"
  fi
}

# ---- modes that create nothing ---------------------------------------------
case "$FT_MODE" in
  plan)
    FT_PREFIX=fdfan-PID-RAND-
    ft_plan
    ft_plan_print
    ft_bound_print
    ft_budget plan
    exit 0
    ;;
  cleanup)
    [ "$(id -u)" -eq 0 ] || ft_die "--cleanup needs root"
    removed=0 skipped=0
    # Runs are known by their namespaces and by their temp dirs in /tmp.
    for run in $( { ft_ns_list "$FT_NS_GLOBAL_PREFIX"; find /tmp "$FT_DATA_DIR" -maxdepth 1 -name 'fdfan-*' -printf '%f\n' 2>/dev/null; } |
                  sed -n 's/^\(fdfan-[0-9]*-[0-9a-f]*-\).*/\1/p' | sort -u); do
      pid=${run#fdfan-}; pid=${pid%%-*}
      if [ "$FT_FORCE" -eq 0 ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q fanout.sh; then
        echo "cleanup: $run belongs to live run pid $pid, left alone (--force to remove)"
        skipped=$((skipped + 1)); continue
      fi
      n=$(ft_ns_remove_prefix "$run") || true
      rm -rf "/tmp/$run"????
      [ ! -d "$FT_DATA_DIR/${run}data" ] || rm -rf "$FT_DATA_DIR/${run}data"
      ft_fs_remove_at "$FT_DATA_DIR/${run}xfs"
      echo "cleanup: $run removed $n namespaces"
      removed=$((removed + n))
    done
    left=$(ft_ns_list "$FT_NS_GLOBAL_PREFIX" | wc -l)
    echo "cleanup: removed $removed namespaces; $left fdfan- namespaces remain ($skipped live runs skipped)"
    [ "$left" -eq 0 ] || [ "$skipped" -gt 0 ]
    exit $?
    ;;
  run)
    missing=()
    for b in node/fdnode scheduler/fdsched admin/fdadmin; do
      [ -x "$FT_BUILD_DIR/$b" ] || missing+=("$FT_BUILD_DIR/$b")
    done
    ft_bound_print
    if [ ${#missing[@]} -gt 0 ]; then
      echo "fanout: the fan-out run needs the fdist daemons; not built: ${missing[*]}." >&2
      echo "fanout: build with ./scripts/build.sh release. Nothing was created." >&2
      exit 3
    fi
    ;;
esac

# ---- modes that build the topology -----------------------------------------
[ "$(id -u)" -eq 0 ] || ft_die "$FT_MODE needs root (network namespaces)"
for tool in ip tc python3 timeout ss; do
  command -v "$tool" >/dev/null || ft_die "$tool not found (see scripts/deps.sh)"
done
if [ "$FT_MODE" = validate ] || [ "$FT_MODE" = star ]; then
  command -v iperf3 >/dev/null || ft_die "iperf3 not found"
fi
if [ "$FT_MODE" = star ] && [ "$FT_ORIGINS" -lt 1 ]; then ft_die "--star needs --origins >= 1"; fi
ft_budget "$FT_MODE"
# File descriptors: fdsched holds a connection per node and origin (and
# fdadmin's), each daemon inherits this shell's limit; raise the soft limit
# to what the run needs if it is below (the hard limit is the ceiling).
FT_NOFILE_NEED=$((4 * (FT_NODES + FT_ORIGINS) + 256))
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$FT_NOFILE_NEED" ]; then
  ulimit -Sn "$FT_NOFILE_NEED" 2>/dev/null || ft_die "needs $FT_NOFILE_NEED file descriptors; ulimit -Hn is $(ulimit -Hn)"
fi

FT_PREFIX=fdfan-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')-
FT_TMP=$(mktemp -d "/tmp/$FT_PREFIX"XXXX)
FT_WATCHDOG=''
FT_CLEANED=0
FT_OUT=${FT_OUT:-$FT_REPO/perf/results/fanout-$(date -u +%Y%m%dT%H%M%SZ)-$FT_MODE}

# Removes everything this run created. Runs once, from the EXIT trap, with
# further signals ignored so a second Ctrl-C cannot leave a half-cleaned run.
ft_cleanup() {
  local status=$?
  [ "$FT_CLEANED" -eq 0 ] || return 0
  FT_CLEANED=1
  trap '' INT TERM HUP
  set +e
  if [ -n "$FT_WATCHDOG" ]; then kill -TERM "$FT_WATCHDOG" 2>/dev/null; wait "$FT_WATCHDOG" 2>/dev/null; fi
  ft_killer_stop
  local n left
  n=$(ft_ns_remove_prefix "$FT_PREFIX")
  left=$(ft_ns_list "$FT_PREFIX" | wc -l)
  echo "fanout: cleanup: removed $n namespaces of $FT_PREFIX; $left left" >&2
  pl_result_free
  ft_daemons_data_remove "$status"
  ft_fs_remove
  rm -rf "$FT_TMP"
  [ "$left" -eq 0 ] || status=1
  exit "$status"
}

ft_on_signal() {
  echo "fanout: caught SIG$1, removing the topology" >&2
  case "$1" in INT) exit 130 ;; HUP) exit 129 ;; *) exit 143 ;; esac
}

# --fs xfs: a sparse image in the host data dir, sized for every daemon's
# versions plus the source, on a loop device with direct I/O (so the page
# cache holds nothing twice and the disk figures stay the disk's), mounted
# where the run's data goes. FT_DISK_DIR keeps the host dir, whose disk the
# report measures.
FT_DISK_DIR=$FT_DATA_DIR FT_FS_MNT=''
ft_fs_remove() {
  [ -z "$FT_FS_MNT" ] || ft_fs_remove_at "$FT_FS_MNT"
  FT_FS_MNT=''
}
ft_fs_setup() {
  [ "$FT_FS" = xfs ] || return 0
  command -v mkfs.xfs >/dev/null || ft_die "--fs xfs needs mkfs.xfs (xfsprogs, see scripts/deps.sh)"
  local versions=1 bytes img loop
  [ "$FT_DELTA" -eq 0 ] || versions=2
  bytes=$(( (FT_NODES + FT_ORIGINS + 1) * FT_SIZE * versions * 11 / 10 + (1 << 30) ))
  FT_FS_MNT=$FT_DISK_DIR/${FT_PREFIX}xfs
  img=$FT_FS_MNT.img
  mkdir -p "$FT_FS_MNT"
  truncate -s "$bytes" "$img" || ft_die "cannot make the XFS image $img"
  mkfs.xfs -q -f -m reflink=1 "$img" >/dev/null || ft_die "mkfs.xfs failed on $img"
  loop=$(losetup -f --show --direct-io=on "$img") || ft_die "no loop device for $img"
  mount "$loop" "$FT_FS_MNT" || ft_die "cannot mount $loop on $FT_FS_MNT"
  FT_DATA_DIR=$FT_FS_MNT
  echo "fanout: data on XFS (reflink) $loop, $((bytes >> 20)) MiB sparse image $img"
}

trap ft_cleanup EXIT
trap 'ft_on_signal INT' INT
trap 'ft_on_signal TERM' TERM
trap 'ft_on_signal HUP' HUP

# The time bound: a child that sends SIGTERM to this script after
# --time-limit seconds. It checks every second that its parent is still this
# script, so if the script dies without its traps (SIGKILL) it exits within
# a second instead of lingering or signalling a reused pid.
(
  trap 'kill "$s" 2>/dev/null; exit 0' TERM
  me=$BASHPID
  for ((t = 0; t < FT_TIME_LIMIT; t++)); do
    sleep 1 & s=$!
    wait "$s"
    [ "$(cut -d' ' -f4 "/proc/$me/stat")" = "$$" ] || exit 0
  done
  echo "fanout: time limit of $FT_TIME_LIMIT s reached" >&2
  kill -TERM $$
) &
FT_WATCHDOG=$!

mkdir -p "$FT_OUT"
pl_result_init "$FT_TMP"  # inside the run's temp dir, so --cleanup removes it after a SIGKILL
pl_machine_describe "$FT_REPO"
pl_machine_result
pl_result_str mode "$FT_MODE"
pl_result_str prefix "$FT_PREFIX"
pl_result_str fs "$FT_FS"
ft_budget_result
[ "$FT_MODE" != run ] || ft_fs_setup
for k in NODES REGIONS ZONES RATE ZONE_LINK_RATE REGION_LINK_RATE ORIGINS ORIGIN_RATE ORIGIN_LINK_RATE; do
  v=FT_$k
  pl_result_num "topology.$(tr '[:upper:]' '[:lower:]' <<<"$k")" "${!v}"
done
pl_result_str topology.qdisc "$FT_QDISC"

ft_plan
ft_plan_print
t0=$(date +%s.%N)
ft_topo_build
t1=$(date +%s.%N)
nns=$(ft_ns_list "$FT_PREFIX" | wc -l)
printf 'topology: built %d namespaces in %.2f s\n' "$nns" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
pl_result_num topology.namespaces "$nns"

case "$FT_MODE" in
  validate)
    c0=$(pl_cpu_snap)
    status=0
    ft_validate || status=1
    c1=$(pl_cpu_snap)
    echo "validate: whole validation $(pl_cpu_report "$c0" "$c1")"
    pl_result_bool validation.passed "$([ "$status" -eq 0 ] && echo true || echo false)"
    pl_result_write "$FT_OUT/validate.json"
    echo "validate: $([ "$status" -eq 0 ] && echo PASSED || echo FAILED); JSON in $FT_OUT/validate.json"
    exit "$status"
    ;;
  star)
    ft_bound_print
    o=${FT_NS_ORIGIN[0]} oip=${FT_IP_ORIGIN[0]}
    spids=()
    for ((i = 0; i < FT_NODES; i++)); do
      timeout "$FT_TIME_LIMIT" ip netns exec "$o" iperf3 -s -1 -B "$oip" -p $((5201 + i)) >/dev/null 2>&1 &
      spids+=($!)
      ft_wait_listen "$o" "$oip" $((5201 + i))
    done
    echo "star: o0 sends $FT_SIZE bytes to each of $FT_NODES nodes at once"
    cpids=()
    ft_run_begin
    # --kill window: the star's expected T, N x S/B at 0.956 of the cap
    ft_killer_start "$FT_KILL" "$(awk -v n="$FT_NODES" -v s="$FT_SIZE" -v r="$FT_RATE" 'BEGIN { printf "%.3f", n * s * 8 / (r * 1e6 * 0.956) }')"
    for ((i = 0; i < FT_NODES; i++)); do
      (
        if timeout "$FT_TIME_LIMIT" ip netns exec "${FT_NS_NODE[i]}" \
             iperf3 -c "$oip" -p $((5201 + i)) -R -n "$FT_SIZE" >"$FT_TMP/star-$i.log" 2>&1; then
          ft_run_done "$i"
        fi
      ) 2>>"$FT_TMP/star-$i.log" &  # bash's "Killed" notice for --kill victims
      cpids+=($!)
    done
    for p in "${cpids[@]}"; do wait "$p" || true; done
    ft_killer_stop
    ft_run_end
    # A killed node's one-shot server on o0 never gets its test finished.
    mapfile -t killed < <(ft_killed_nodes)
    for k in "${killed[@]}"; do kill -TERM "${spids[k]}" 2>/dev/null || true; done
    for p in "${spids[@]}"; do wait "$p" || true; done
    status=0
    ft_report "star reference (no fdist)" "$FT_SIZE" "${killed[@]}" || status=1
    pl_result_write "$FT_OUT/star.json"
    echo "star: JSON in $FT_OUT/star.json"
    exit "$status"
    ;;
  run)
    ft_fdist_run
    exit $?
    ;;
  up)
    echo "up: topology is up until the time limit ($FT_TIME_LIMIT s) or Ctrl-C; e.g."
    echo "up:   ip netns exec ${FT_NS_NODE[0]} ip route"
    # Waiting on the watchdog itself: no process of ours outlives a SIGKILL
    # by more than a second, and signals interrupt the wait at once.
    wait "$FT_WATCHDOG" || true
    ;;
esac
