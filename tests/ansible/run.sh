#!/usr/bin/env bash
# run.sh — ansible/site.yml and ansible/rolling-upgrade.yml, for real: over
# ssh into systemd-nspawn containers that boot systemd, install the fdist
# .deb and run its units; then a publish, checked by sha256 on every host,
# and a rolling upgrade to a newer package while a second version fans out.
#
# usage: sudo tests/ansible/run.sh          (about 5 minutes; exit 77: cannot run here)
#
# What it makes, all removed at exit (trap), and nothing outside it:
#   - a Debian 12 root (tests/ansible/rootfs.sh, debootstrap), made once and
#     cached in $FDIST_ANSIBLE_CACHE (default /var/tmp/fdist-ansible-cache):
#     the one thing kept, so that a rerun does not debootstrap again;
#   - per host an overlayfs on that root (its own upper dir), an ssh host
#     key, a machine id, and a network namespace with one veth on a bridge
#     that lives in a namespace of its own; addresses in 10.77.0.0/16 exist
#     only there, so every byte of traffic stays inside these namespaces;
#   - a controller namespace on the same bridge (10.77.0.1): ansible-playbook
#     runs in it, so its ssh, its delegate_to: localhost fdadmin calls and the
#     test's own fdadmin publish reach the hosts and nothing else;
#   - 10 containers (systemd-nspawn --boot): fdsched, 3 origins (chain
#     head, middle, tail) and 6 nodes in 2 regions x 2 zones, one host each.
# Steps: package v1 and v2 (scripts/package.sh --revision 1 / 2, same commit)
# -> site.yml with v1 -> units active -> publish big.img v1, sha256 on every
# host -> rolling-upgrade.yml with v2 over the nodes, one at a time (serial
# 10% of 6), and big.img v2 published as soon as the first node's package is
# being installed -> site.yml with v2 for fdsched and the origins (origins
# serial 1) -> every host: package v2, unit active, restarted, its process
# on the new binary (not a deleted one), current = v2's sha256; fdsched still
# lists v1 and v2, and every fdnode host holds both with their sha256 (no
# version lost).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "run.sh: SKIP: $*" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, overlayfs, systemd-nspawn)"
for t in systemd-nspawn debootstrap ansible-playbook ip ssh ssh-keygen help2man dpkg-deb; do
  command -v "$t" >/dev/null || skip "$t missing (scripts/deps.sh installs it)"
done
[ -d /sys/fs/cgroup ] || skip "no cgroup filesystem for systemd in a container"

cache=${FDIST_ANSIBLE_CACHE:-/var/tmp/fdist-ansible-cache}
W=$(mktemp -d /var/tmp/fdist-ansible.XXXXXX)
P=fda$$ # namespace and interface prefix
T0=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() { say "FAIL: $*"; exit 1; }

# ---- the fleet: name address role region zone ----
HOSTS=(
  "sched 10.77.0.10 fdsched - -"
  "origin1 10.77.1.11 origin eu eu-a"
  "origin2 10.77.2.11 origin eu eu-b"
  "origin3 10.77.3.11 origin us us-a"
  "node-eu-a-1 10.77.1.21 node eu eu-a"
  "node-eu-a-2 10.77.1.22 node eu eu-a"
  "node-eu-b-1 10.77.2.21 node eu eu-b"
  "node-us-a-1 10.77.3.21 node us us-a"
  "node-us-b-1 10.77.4.21 node us us-b"
  "node-us-b-2 10.77.4.22 node us us-b"
)
declare -A ADDR ROLE NSPAWN_PID
NAMES=()
for h in "${HOSTS[@]}"; do
  read -r n a r _ _ <<<"$h"
  NAMES+=("$n"); ADDR[$n]=$a; ROLE[$n]=$r
done
CTL_NS=${P}ctl
BR_NS=${P}br
NETNS=()

cleanup() {
  local rc=$? n p i
  trap - EXIT INT TERM
  set +e
  say "cleanup: stopping containers, removing namespaces and $W"
  for n in "${!NSPAWN_PID[@]}"; do kill -TERM "${NSPAWN_PID[$n]}" 2>/dev/null; done
  for n in "${!NSPAWN_PID[@]}"; do
    p=${NSPAWN_PID[$n]}
    for i in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$p" 2>/dev/null && { say "cleanup: $n did not stop in 30 s: SIGKILL"; kill -KILL "$p"; }
    wait "$p" 2>/dev/null
  done
  # ssh control masters and anything else the test ran in its controller
  # namespace (by pid: only processes inside the namespaces it made).
  for n in "${NETNS[@]}"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
  done
  sleep 0.5
  for n in "${NETNS[@]}"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for n in "${NAMES[@]}"; do
    mountpoint -q "$W/$n/root" && umount "$W/$n/root"
  done
  for n in "${NETNS[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$W"
  [ $rc -eq 0 ] && say "PASS" || say "exit $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- packages v1 and v2 (one commit, revision 1 and 2) ----
say "packaging v1 and v2 (scripts/package.sh)"
DEB1=$(timeout 1200 "$root/scripts/package.sh" --out "$W/dist" --revision 1 2>"$W/package1.log" | tail -n1) ||
  { tail -n 20 "$W/package1.log"; fail "package.sh (v1)"; }
DEB2=$(timeout 600 "$root/scripts/package.sh" --out "$W/dist" --revision 2 2>"$W/package2.log" | tail -n1) ||
  { tail -n 20 "$W/package2.log"; fail "package.sh (v2)"; }
V1=$(dpkg-deb -f "$DEB1" Version)
V2=$(dpkg-deb -f "$DEB2" Version)
dpkg --compare-versions "$V2" gt "$V1" || fail "$V2 does not upgrade $V1"
FDADMIN=$root/build-pkg/admin/fdadmin
say "  v1 $V1 ($(basename "$DEB1"))"
say "  v2 $V2 ($(basename "$DEB2"))"

# ---- the root every container boots ----
say "container root (tests/ansible/rootfs.sh, cached in $cache)"
ROOTFS=$("$root/tests/ansible/rootfs.sh" "$cache" | tail -n1)

# ---- network: a bridge in its own namespace, one veth per host ----
ip netns add "$BR_NS"; NETNS+=("$BR_NS")
ip -n "$BR_NS" link set lo up
ip -n "$BR_NS" link add br0 type bridge
ip -n "$BR_NS" link set br0 up
attach() { # NS PORT ADDR
  ip netns add "$1"; NETNS+=("$1")
  ip -n "$BR_NS" link add "$2" type veth peer name eth0 netns "$1"
  ip -n "$BR_NS" link set "$2" master br0 up
  ip -n "$1" addr add "$3/16" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
attach "$CTL_NS" ctl 10.77.0.1
ssh-keygen -q -t ed25519 -N '' -C fdist-ansible-test -f "$W/id"

# ---- containers ----
i=0
for n in "${NAMES[@]}"; do
  i=$((i + 1))
  attach "$P$i" "h$i" "${ADDR[$n]}"
  d=$W/$n
  mkdir -p "$d/upper" "$d/work" "$d/root"
  mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$d/upper,workdir=$d/work" "$d/root"
  r=$d/root
  echo "$n" >"$r/etc/hostname"
  printf '127.0.0.1 localhost\n%s %s\n' "${ADDR[$n]}" "$n" >"$r/etc/hosts"
  tr -d - </proc/sys/kernel/random/uuid >"$r/etc/machine-id"
  ssh-keygen -q -A -f "$r" >/dev/null
  install -d -m 0700 "$r/root/.ssh"
  install -m 0600 "$W/id.pub" "$r/root/.ssh/authorized_keys"
  # --rlimit: a container cannot raise its hard limits itself, and the
  # units ask for LimitMEMLOCK=infinity and LimitNOFILE=1048576.
  systemd-nspawn --boot --keep-unit --register=no --console=passive \
    --network-namespace-path="/run/netns/$P$i" -D "$r" -M "$n" \
    --rlimit=MEMLOCK=infinity --rlimit=NOFILE=1048576 \
    </dev/null >"$d/nspawn.log" 2>&1 &
  NSPAWN_PID[$n]=$!
done

mkdir -p "$W/cp"
SSH=(ssh -i "$W/id" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o ConnectTimeout=3 -o ControlMaster=auto -o "ControlPath=$W/cp/t-%h"
  -o ControlPersist=300s)
on() { # HOST CMD: runs CMD on HOST over ssh, from the controller namespace
  local h=$1
  shift
  ip netns exec "$CTL_NS" "${SSH[@]}" "root@${ADDR[$h]}" "$@"
}
say "booting ${#NAMES[@]} containers (systemd-nspawn --boot)"
for n in "${NAMES[@]}"; do
  until=$((SECONDS + 120))
  until st=$(on "$n" 'systemctl is-system-running --wait' 2>/dev/null); [ -n "$st" ]; do
    # A container that exits before its sshd answers is this machine's
    # limit (no cgroups for systemd, nspawn refused), not fdist's: a skip.
    kill -0 "${NSPAWN_PID[$n]}" 2>/dev/null || { tail -n 5 "$W/$n/nspawn.log"; skip "$n: the container did not boot"; }
    [ $SECONDS -lt $until ] || fail "$n: no ssh in 120 s"
    sleep 1
  done
  [ "$st" = running ] || say "  $n: system $st: $(on "$n" 'systemctl --failed --no-legend --plain' | tr '\n' ' ')"
done
say "hosts provisioned:"
for h in "${HOSTS[@]}"; do
  read -r n a r reg z <<<"$h"
  printf '    %-12s %-11s %-8s region %-3s zone %-5s %s, pid 1 %s\n' "$n" "$a" "$r" "$reg" "$z" \
    "$(on "$n" '. /etc/os-release; echo "$PRETTY_NAME"')" "$(on "$n" 'cat /proc/1/comm') $(on "$n" 'systemctl --version | head -n1 | cut -d" " -f2')"
done

# ---- keys, inventory, ansible config ----
mkdir -p "$W/keys" "$W/ansible-tmp"
"$FDADMIN" keygen "$W/keys/admin.pem" "$W/keys/admin.pub" --cluster "$W/keys/cluster.key" >/dev/null
{
  echo "[fdsched]"
  echo "sched ansible_host=${ADDR[sched]}"
  echo "[origins]"
  for h in "${HOSTS[@]}"; do read -r n a r reg z <<<"$h"; [ "$r" = origin ] && echo "$n ansible_host=$a region=$reg zone=$z"; done
  echo "[nodes]"
  for h in "${HOSTS[@]}"; do read -r n a r reg z <<<"$h"; [ "$r" = node ] && echo "$n ansible_host=$a region=$reg zone=$z"; done
  printf '[fdnode:children]\norigins\nnodes\n'
} >"$W/inventory.ini"
cat >"$W/ansible.cfg" <<EOF
[defaults]
inventory = $W/inventory.ini
remote_user = root
private_key_file = $W/id
host_key_checking = False
forks = 10
timeout = 30
interpreter_python = /usr/bin/python3
local_tmp = $W/ansible-tmp
nocolor = True
retry_files_enabled = False

[ssh_connection]
pipelining = True
control_path_dir = $W/cp
ssh_args = -o ControlMaster=auto -o ControlPersist=120s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR
EOF
cat >"$W/vars.yml" <<EOF
fdist_cluster_key_file: $W/keys/cluster.key
fdist_admin_pub_file: $W/keys/admin.pub
fdist_admin_key_file: $W/keys/admin.pem
fdist_build_dir: $root/build-pkg
# small engines: ten daemons share this machine
fdist_node_threads: 1
fdist_chunk_buf: 1M
fdist_heartbeat_ms: 500
# /metrics on every daemon (the roles' metrics_listen)
fdist_metrics_port: 9401
fdist_sched_metrics_port: 9400
EOF
playbook() { # LOG ARGS...: ansible-playbook from the controller namespace
  local log=$1
  shift
  ip netns exec "$CTL_NS" env ANSIBLE_CONFIG="$W/ansible.cfg" HOME="$W" \
    timeout 900 ansible-playbook -e "@$W/vars.yml" "$@" >"$log" 2>&1
}
recap() { sed -n '/PLAY RECAP/,$p' "$1" | sed 's/^/    /'; }

# ---- site.yml with v1 ----
say "ansible-playbook ansible/site.yml (package $V1)"
playbook "$W/site1.log" "$root/ansible/site.yml" -e "fdist_deb=$DEB1" ||
  { tail -n 40 "$W/site1.log"; fail "site.yml failed"; }
recap "$W/site1.log"

unit_of() { [ "${ROLE[$1]}" = fdsched ] && echo fdsched || echo fdnode; }
declare -A PID1
units_report() { # VERSION: every host's unit active, package VERSION, its
  # process on the installed binary (a binary that dpkg replaced under a
  # running process reads "/usr/bin/fdnode (deleted)"); from the second
  # call on, a process other than the first call's (restarted).
  local n u st ver pid exe bad=0 note
  for n in "${NAMES[@]}"; do
    u=$(unit_of "$n")
    st=$(on "$n" "systemctl is-active $u" || true)
    ver=$(on "$n" "dpkg-query -W -f '\${Version}' fdist")
    pid=$(on "$n" "systemctl show -p MainPID --value $u")
    exe=$(on "$n" "readlink /proc/$pid/exe" || true)
    note=
    if [ -z "${PID1[$n]:-}" ]; then PID1[$n]=$pid
    elif [ "${PID1[$n]}" = "$pid" ]; then note=" NOT RESTARTED"; bad=1
    else note=" (was pid ${PID1[$n]})"; fi
    printf '    %-12s %-8s %-7s package %s  pid %s exe %s%s\n' "$n" "$u" "$st" "$ver" "$pid" "$exe" "$note"
    [ "$st" = active ] && [ "$ver" = "$1" ] && [ "$exe" = "/usr/bin/$u" ] || bad=1
  done
  return $bad
}
say "units active:"
units_report "$V1" || fail "a unit is not active on package $V1"

# ---- publish v1 ----
ADM=(ip netns exec "$CTL_NS" "$FDADMIN" --scheduler "${ADDR[sched]}:7400"
  --origins "${ADDR[origin1]}:7401,${ADDR[origin2]}:7401,${ADDR[origin3]}:7401"
  --cluster-key "$W/keys/cluster.key" --admin-key "$W/keys/admin.pem")
NODES_FDNODE=()
for n in "${NAMES[@]}"; do [ "${ROLE[$n]}" = fdsched ] || NODES_FDNODE+=("$n"); done
until=$((SECONDS + 60))
while alive=$("${ADM[@]}" nodes --json 2>/dev/null | grep -o '"state":"alive"' | wc -l); [ "$alive" -lt ${#NODES_FDNODE[@]} ]; do
  [ $SECONDS -lt $until ] || fail "only $alive of ${#NODES_FDNODE[@]} fdnode hosts alive with fdsched after 60 s"
  sleep 1
done
say "fdsched: $alive fdnode hosts alive"

head -c $((48 << 20)) /dev/urandom >"$W/big.v1"
cp "$W/big.v1" "$W/big.v2"
for off in 3 17 30 41; do # four changed chunks of 1 MiB: v2 goes out as a delta
  head -c $((1 << 20)) /dev/urandom | dd of="$W/big.v2" bs=1M seek=$off conv=notrunc status=none
done
SHA1=$(sha256sum <"$W/big.v1" | cut -d' ' -f1)
SHA2=$(sha256sum <"$W/big.v2" | cut -d' ' -f1)

check_current() { # SHA SECONDS: every fdnode host's current has SHA; prints each
  local want=$1 until=$((SECONDS + $2)) n got pending
  while :; do
    pending=()
    for n in "${NODES_FDNODE[@]}"; do
      got=$(on "$n" 'sha256sum /var/lib/fdist/data/big.img/current 2>/dev/null' | cut -d' ' -f1 || true)
      [ "$got" = "$want" ] || pending+=("$n")
    done
    [ ${#pending[@]} -eq 0 ] && break
    [ $SECONDS -lt $until ] || fail "after $2 s not current: ${pending[*]}"
    sleep 1
  done
  for n in "${NODES_FDNODE[@]}"; do
    printf '    %-12s %s\n' "$n" "$(on "$n" 'sha256sum /var/lib/fdist/data/big.img/current' | cut -d' ' -f1)"
  done
}
say "fdadmin publish big.img v1 (48 MiB) from the controller namespace"
"${ADM[@]}" publish "$W/big.v1" --name big.img --chunk-size 1M --no-progress | sed 's/^/    /'
say "sha256 of every host's current (want $SHA1):"
check_current "$SHA1" 120
say "/metrics of every fdnode host (the roles' metrics_listen): fdist_file_current_version"
for n in "${NODES_FDNODE[@]}"; do
  for _ in $(seq 1 20); do # the gauges are refreshed every second or so
    page=$(ip netns exec "$CTL_NS" python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
      "http://${ADDR[$n]}:9401/metrics" 2>/dev/null || true)
    v=$(awk '/^fdist_file_current_version[{].*file="big.img"/ { print $2 }' <<<"$page")
    [ "$v" = 1 ] && break
    sleep 0.5
  done
  printf '    %-12s big.img %s\n' "$n" "${v:-none}"
  [ "$v" = 1 ] || fail "$n: /metrics says current version '${v:-none}' of big.img, want 1"
done

# ---- rolling upgrade to v2 while big.img v2 fans out ----
say "ansible-playbook ansible/rolling-upgrade.yml (package $V2), big.img v2 published during it"
playbook "$W/rolling.log" "$root/ansible/rolling-upgrade.yml" -e "fdist_deb=$DEB2" &
rolling=$!
until=$((SECONDS + 300))
until grep -q 'fdist package installed' "$W/rolling.log" 2>/dev/null; do
  kill -0 $rolling 2>/dev/null || break
  [ $SECONDS -lt $until ] || fail "rolling upgrade reached no package install in 300 s"
  sleep 0.2
done
say "  first node's package install begun: publishing big.img v2"
"${ADM[@]}" publish "$W/big.v2" --name big.img --chunk-size 1M --no-progress | sed 's/^/    /'
wait $rolling || { tail -n 40 "$W/rolling.log"; fail "rolling-upgrade.yml failed"; }
say "rolling upgrade steps (one host per batch):"
awk '/^PLAY \[|^TASK \[|^RUNNING HANDLER \[/ { t = $0; sub(/ \*+$/, "", t) } /^(ok|changed|fatal): \[/ { print "    " t "  " $0 }' \
  "$W/rolling.log" | grep -v 'Gathering Facts' | grep -E 'drain|package installed|fdnode.ini|running|listens|restart'
recap "$W/rolling.log"

say "ansible-playbook ansible/site.yml (package $V2) for fdsched and the origins"
playbook "$W/site2.log" "$root/ansible/site.yml" -e "fdist_deb=$DEB2" --limit 'fdsched:origins' ||
  { tail -n 40 "$W/site2.log"; fail "site.yml (v2, fdsched and origins) failed"; }
recap "$W/site2.log"

say "sha256 of every host's current (want v2 $SHA2):"
check_current "$SHA2" 180
say "every host on package $V2, unit active, running the new binary:"
units_report "$V2" || fail "a host is not on package $V2 with its unit active"
say "versions fdsched holds (no version lost):"
"${ADM[@]}" versions big.img | sed 's/^/    /'
vs=$("${ADM[@]}" versions big.img --json)
for v in 1 2; do
  grep -q "\"version\":$v[,}]" <<<"$vs" || fail "fdsched lost big.img v$v: $vs"
done
say "every version on every fdnode host (keep_versions 2: v1 and v2, by sha256):"
for n in "${NODES_FDNODE[@]}"; do
  got=$(on "$n" 'cd /var/lib/fdist/data/big.img && sha256sum v1 v2' | awk '{ printf "%s %s ", $2, $1 }')
  printf '    %-12s %s\n' "$n" "$got"
  [ "$got" = "v1 $SHA1 v2 $SHA2 " ] || fail "$n does not hold v1 and v2 as published"
done
say "done in $((SECONDS - T0)) s"
