#!/usr/bin/env bash
# rootfs.sh — the Debian 12 root every test container boots, made once with
# debootstrap and cached (tests/ansible/run.sh overlays it per host).
# usage: rootfs.sh CACHE_DIR   prints the root's path on stdout
#
# What is in it and why: systemd (PID 1 of each container), openssh-server
# (ansible's transport), python3 + python3-apt (ansible's modules; its apt
# module needs python3-apt), sudo (become), iproute2; and the runtime
# libraries the fdist package depends on, because the containers have no
# route to any mirror: `apt: deb=` then installs the package with its
# Depends satisfied locally, as on a host whose mirror is reachable.
# The cache is keyed by this list: change it and a new root is made.
set -euo pipefail
cache=${1:?usage: rootfs.sh CACHE_DIR}
include=systemd,systemd-sysv,dbus,openssh-server,python3,python3-apt,sudo,iproute2,adduser,ca-certificates,liburing2,libisal2,libprotobuf-c1,libjemalloc2,libssl3,libinih1,libjson-c5,libmicrohttpd12
key=$(printf '%s' "$include" | sha256sum | cut -c1-12)
root=$cache/bookworm-$key
if [ -f "$root/.fdist-root-ok" ]; then echo "$root"; exit 0; fi

# The host's mirror (the first deb822 URI that serves bookworm), as
# scripts/fresh-check.sh finds it.
mirror=$(awk '/^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
              tolower($1) == "uris:" { u = $2 }
              tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") ok = 1 }
              END { if (u != "" && ok) print u }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "rootfs.sh: debootstrap bookworm from $mirror into $tmp (once; cached as $root)" >&2
timeout 1200 debootstrap --variant=minbase --include="$include" bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
  { tail -n 20 "$tmp/debootstrap.log" >&2; exit 1; }
r=$tmp/root
# sshd: keys only, root allowed by key. Host keys are made per container at
# its first boot (ssh-keygen -A in run.sh's overlay), not shared via the cache.
rm -f "$r"/etc/ssh/ssh_host_*
cat >"$r/etc/ssh/sshd_config.d/fdist-test.conf" <<'EOC'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
EOC
# Units a container does not need (and that wait for things it lacks).
for u in systemd-networkd-wait-online.service systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$r/etc/systemd/system/$u"
done
echo "" >"$r/etc/machine-id"
rm -rf "$r"/var/cache/apt/archives/*.deb
touch "$r/.fdist-root-ok"
mv "$r" "$root"
echo "$root"
