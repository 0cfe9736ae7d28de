#!/usr/bin/env bash
# ingest_vs_fio.sh — fdstore ingest of one version (verification off, then on)
# against fio writing the same bytes (io_uring, O_DIRECT, 1 MiB blocks, same
# queue depth) on the same disk in the same run; prints the ratios and GB/s
# per core with verification on. Not part of ctest.
set -euo pipefail
usage() {
  cat <<USAGE
usage: ingest_vs_fio.sh [--build DIR] [--dir DIR] [--size BYTES] [--queue-depth Q]
                        [--chunk-size BYTES] [--source-dir DIR]
  --build        build directory holding storage/fdstore (default: ./build)
  --dir          directory on the disk under test (default: /var/tmp/fd-st-perf)
  --size         version size, K/M/G suffixes (default: 4G)
  --queue-depth  in-flight disk operations for both fio and the store (default: 16)
  --chunk-size   store chunk size (default: 4M, the production default)
  --source-dir   where the source file is made; memory-backed so that the disk
                 under test only sees the store's writes (default: /dev/shm)
Everything it creates is deleted when it exits.
USAGE
}
build=./build dir=/var/tmp/fd-st-perf size=4G qd=16 cs=4M srcdir=/dev/shm
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --queue-depth) qd=$2; shift 2 ;;
    --chunk-size) cs=$2; shift 2 ;;
    --source-dir) srcdir=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
fdstore=$(cd "$build" && pwd)/storage/fdstore
[ -x "$fdstore" ] || { echo "no $fdstore: build first (./scripts/build.sh release)" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio not installed" >&2; exit 1; }
bytes=$(numfmt --from=iec "$size")

mkdir -p "$dir"
src=$(mktemp -d "$srcdir/fd-st-perf-src-XXXXXX")
cleanup() { rm -rf "$dir/fio.dat" "$dir/data-off" "$dir/data-on" "$dir/keys" "$src"; rmdir "$dir" 2>/dev/null || true; }
trap cleanup EXIT

free_disk=$(df --output=avail -B1 "$dir" | tail -1)
free_src=$(df --output=avail -B1 "$srcdir" | tail -1)
[ "$free_disk" -gt $((bytes + bytes / 4)) ] || { echo "not enough space in $dir" >&2; exit 1; }
[ "$free_src" -gt $((bytes + bytes / 4)) ] || { echo "not enough space in $srcdir" >&2; exit 1; }

dev=$(df --output=source "$dir" | tail -1)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
  "$(free -g | awk '/Mem:/ {print $2}') GiB RAM, kernel $(uname -r)"
echo "disk: $dev ($(df --output=fstype "$dir" | tail -1)) at $dir, free $(numfmt --to=iec "$free_disk")"
echo "run: $size version, chunk $cs, queue depth $qd; source in $srcdir"

# The disk is mounted with `discard` here: deleting gigabytes queues trims
# that slow down whatever writes next. Let them land before each measurement.
settle() { sync; sleep 5; }

mkdir -p "$dir/keys"
"$fdstore" keygen "$dir/keys/k.pem" "$dir/keys/k.pub" >/dev/null
head -c "$bytes" /dev/urandom >"$src/src"
"$fdstore" manifest "$src/src" --name Perf --version 1 --chunk-size "$cs" --key "$dir/keys/k.pem" \
  -o "$src/m1" >/dev/null

settle
# Reference: fio writes the same number of bytes, fsync at the end (the store
# fdatasyncs before it counts a chunk).
fio --name=ref --filename="$dir/fio.dat" --rw=write --bs=1M --iodepth="$qd" --ioengine=io_uring \
  --direct=1 --size="$bytes" --end_fsync=1 --output-format=json >"$src/fio.json"
fio_gbs=$(python3 -c "import json,sys; j=json.load(open('$src/fio.json')); print('%.3f' % (j['jobs'][0]['write']['bw_bytes'] / 1e9))")
rm -f "$dir/fio.dat"
settle
echo "fio (io_uring, O_DIRECT, bs=1M, iodepth=$qd): $fio_gbs GB/s"

run_ingest() { # label data-dir extra-args...
  local label=$1 data=$2
  shift 2
  local out
  out=$("$fdstore" ingest "$data" "$src/m1" "$src/src" --pub "$dir/keys/k.pub" --no-delta \
    --queue-depth "$qd" "$@")
  local secs cpu
  secs=$(sed -n 's/^time \([0-9.]*\) s.*/\1/p' <<<"$out")
  cpu=$(sed -n 's/.*cpu \([0-9.]*\) s.*/\1/p' <<<"$out")
  python3 -c "print('%.3f %.3f' % ($bytes / $secs / 1e9, ($bytes / $cpu / 1e9) if $cpu > 0 else 0))"
}
read -r off_gbs off_core < <(run_ingest off "$dir/data-off" --no-verify)
rm -rf "$dir/data-off"
settle
echo "fdstore ingest, verification off: $off_gbs GB/s"
read -r on_gbs on_core < <(run_ingest on "$dir/data-on")
rm -rf "$dir/data-on"
echo "fdstore ingest, verification on:  $on_gbs GB/s, $on_core GB/s per core (CRC32C + SHA-256, CPU time)"
python3 -c "print('ratio vs fio: verification off %.2f (target >= 0.90), on %.2f' % ($off_gbs / $fio_gbs, $on_gbs / $fio_gbs))"
