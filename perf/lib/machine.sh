# perf/lib/machine.sh — describes the machine a benchmark runs on.
# Source it from bash; it defines functions only and changes no state.
#   pl_machine_describe        prints a human block ("machine: ...") on stdout
#   pl_machine_result          adds the same facts to the JSON result (needs result.sh)
# Every benchmark prints pl_machine_describe first, so a figure is never
# separated from the CPU, memory, kernel and disk it was measured on.
# Facts come from /proc, uname and lsblk only; nothing here needs root.

pl_machine_cpu_model() {
  awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo
}

pl_machine_mem_bytes() {
  awk '/^MemTotal:/ { printf "%.0f\n", $2 * 1024; exit }' /proc/meminfo
}

# "virtual" when the CPU reports the hypervisor flag, "bare-metal" otherwise.
pl_machine_virt() {
  if grep -qw hypervisor /proc/cpuinfo; then echo virtual; else echo bare-metal; fi
}

# One line per whole disk: "name size rotational model" (lsblk -d; zram and
# loop devices are left out: they are memory, not the disk data lands on).
pl_machine_disks() {
  lsblk -d -n -b -o NAME,SIZE,ROTA,TYPE,MODEL 2>/dev/null |
    awk '$4 == "disk" && $1 !~ /^(zram|loop)/ && $2 > 0 {
           model = ""; for (i = 5; i <= NF; i++) model = model (i > 5 ? " " : "") $i
           printf "%s %.0fGiB rota=%s %s\n", $1, $2 / 1073741824, $3, (model == "" ? "-" : model)
         }'
}

# The device and filesystem holding a directory (default: the current one).
pl_machine_fs_of() {
  df -P -T "${1:-.}" 2>/dev/null | awk 'NR == 2 { printf "%s %s %.0fGB free\n", $1, $2, $5 * 1024 / 1e9 }'
}

pl_machine_describe() {
  local dir=${1:-.}
  printf 'machine: %s, %s cores (%s), %.1f GiB RAM, kernel %s\n' \
    "$(pl_machine_cpu_model)" "$(nproc)" "$(pl_machine_virt)" \
    "$(awk -v b="$(pl_machine_mem_bytes)" 'BEGIN { print b / 1073741824 }')" "$(uname -r)"
  local d
  while read -r d; do
    [ -n "$d" ] && printf 'machine: disk %s\n' "$d"
  done < <(pl_machine_disks)
  printf 'machine: data dir %s on %s\n' "$dir" "$(pl_machine_fs_of "$dir")"
  printf 'machine: load average %s at %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%FT%TZ)"
}

pl_machine_result() {
  pl_result_str machine.cpu_model "$(pl_machine_cpu_model)"
  pl_result_num machine.cores "$(nproc)"
  pl_result_str machine.virtualisation "$(pl_machine_virt)"
  pl_result_num machine.mem_bytes "$(pl_machine_mem_bytes)"
  pl_result_str machine.kernel "$(uname -r)"
  pl_result_str machine.disks "$(pl_machine_disks | paste -sd ';' -)"
  pl_result_str machine.loadavg_at_start "$(cut -d' ' -f1-3 /proc/loadavg)"
  pl_result_str machine.date_utc "$(date -u +%FT%TZ)"
}
