# perf/lib/disk.sh — disk use of a benchmark, and the fio reference.
# Source it from bash (functions only), or run it:
#   disk.sh ref DIR [MB]     fio reference: sequential O_DIRECT write then read
#                            of an MB-sized file (MiB, default 512) in DIR, removed after
#   pl_disk_dev DIR          the whole-disk device (e.g. vda) holding DIR
#   pl_disk_snap DEV         "read_bytes write_bytes busy_ms" from /proc/diskstats
#   pl_disk_report DEV A B WALL_S   one human line: MB read/written, % busy
#   pl_disk_ref DIR [MB]     prints "write_MiBps read_MiBps" (fio, io_uring, 4 MiB blocks)
#   pl_disk_copy_ref DIR MB BS [JOBS]  prints "MiBps": a copy's pace, MB read and
#                            MB written at once by JOBS readers and JOBS writers (fio,
#                            O_DIRECT, BS blocks, each writer's fdatasync at its end),
#                            over the longest job's time
# A run prints pl_disk_report next to the CPU line, so a disk-bound run
# shows as one. The fio file is the only thing written; it is removed.

pl_disk_dev() {
  local src
  src=$(df -P "${1:-.}" 2>/dev/null | awk 'NR == 2 { print $1 }')
  [ -b "$src" ] || { echo "pl_disk_dev: ${1:-.} is not on a block device ($src)" >&2; return 1; }
  local parent
  parent=$(lsblk -no PKNAME "$src" 2>/dev/null | head -1)
  basename "${parent:-$src}"
}

pl_disk_snap() {
  awk -v d="$1" '$3 == d { printf "%.0f %.0f %d\n", $6 * 512, $10 * 512, $13; found = 1; exit }
                 END { if (!found) exit 1 }' /proc/diskstats
}

pl_disk_report() {
  awk -v dev="$1" -v a="$2" -v b="$3" -v w="$4" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    printf "disk %s: %.1f MB read, %.1f MB written, busy %.0f%% of %.1f s\n", dev,
           (y[1] - x[1]) / 1e6, (y[2] - x[2]) / 1e6, (w > 0 ? (y[3] - x[3]) / (w * 10) : 0), w
  }'
}

pl_disk_ref() {
  local dir=$1 mb=${2:-512} f w r
  command -v fio >/dev/null || { echo "pl_disk_ref: fio not found" >&2; return 1; }
  f=$(mktemp "$dir/pl-fio.XXXXXX") || return 1
  w=$(fio --name=w --filename="$f" --rw=write --bs=4M --size="${mb}Mi" --direct=1 \
        --ioengine=io_uring --iodepth=4 --end_fsync=1 --output-format=terse --terse-version=3 2>/dev/null |
      awk -F';' '{ printf "%.1f", $48 / 1024 }')
  r=$(fio --name=r --filename="$f" --rw=read --bs=4M --size="${mb}Mi" --direct=1 \
        --ioengine=io_uring --iodepth=4 --output-format=terse --terse-version=3 2>/dev/null |
      awk -F';' '{ printf "%.1f", $7 / 1024 }')
  rm -f "$f"
  [ -n "$w" ] && [ -n "$r" ] || { echo "pl_disk_ref: fio failed in $dir" >&2; return 1; }
  echo "$w $r"
}

pl_disk_copy_ref() {
  local dir=$1 mb=$2 bs=$3 jobs=${4:-1} d out per
  command -v fio >/dev/null || { echo "pl_disk_copy_ref: fio not found" >&2; return 1; }
  d=$(mktemp -d "$dir/pl-fio.XXXXXX") || return 1
  per=$(((mb + jobs - 1) / jobs))
  # The sources are laid out first (not timed), then read while as many
  # other files are written: `jobs` copies at once, as that many processes.
  fio --name=lay --directory="$d" --filename_format='src.$jobnum' --numjobs="$jobs" \
    --rw=write --bs=4M --size="${per}Mi" --direct=1 --ioengine=io_uring --iodepth=4 \
    --end_fsync=1 --output-format=terse >/dev/null 2>&1 &&
    out=$(fio --output-format=terse --terse-version=3 \
      --name=r --directory="$d" --filename_format='src.$jobnum' --numjobs="$jobs" --rw=read \
      --bs="$bs" --size="${per}Mi" --direct=1 --ioengine=io_uring --iodepth=4 \
      --name=w --directory="$d" --filename_format='dst.$jobnum' --numjobs="$jobs" --rw=write \
      --bs="$bs" --size="${per}Mi" --direct=1 --ioengine=io_uring --iodepth=4 --end_fsync=1 2>/dev/null)
  rm -rf "$d"
  # terse v3: field 9 is a job's read runtime (ms), field 50 its write runtime
  echo "$out" | awk -F';' -v mb="$((per * jobs))" '
    { t = ($9 > $50 ? $9 : $50); if (t > ms) ms = t }
    END { if (ms <= 0) exit 1; printf "%.1f\n", mb * 1000 / ms }' ||
    { echo "pl_disk_copy_ref: fio failed in $dir" >&2; return 1; }
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ "${1:-}" != ref ] || [ $# -lt 2 ]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    [ "${1:-}" = --help ] && exit 0 || exit 2
  fi
  read -r w r < <(pl_disk_ref "$2" "${3:-512}")
  printf 'disk reference (fio, O_DIRECT, 4 MiB blocks, %s MiB in %s on %s): write %s MiB/s, read %s MiB/s\n' \
    "${3:-512}" "$2" "$(pl_disk_dev "$2")" "$w" "$r"
fi
