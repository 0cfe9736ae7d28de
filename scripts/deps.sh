#!/usr/bin/env bash
# Installs the Debian 12 packages fdist needs to build, test and benchmark,
# skipping those already present. Uses sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang lld
  # libFuzzer and clang's sanitizer runtimes (only a Recommends of clang's
  # libclang-common-14-dev, so --no-install-recommends leaves it out)
  libclang-rt-dev
  liburing-dev libisal-dev libprotobuf-c-dev protobuf-c-compiler
  libjemalloc-dev libcmocka-dev libssl-dev libinih-dev
  libmicrohttpd-dev
  # fdadmin's --json output
  libjson-c-dev
  # tests and benchmarks: real processes, namespaces, reference tools
  iproute2 procps psmisc coreutils util-linux e2fsprogs xfsprogs fio iperf3 gnuplot-nox
  python3 bc
  # packaging (scripts/package.sh) and its checks
  dpkg-dev help2man lintian
  # tests/ansible/run.sh: the playbooks over ssh into systemd-nspawn containers
  ansible systemd-container debootstrap
  # tests/integration/metrics.sh scrapes every daemon's /metrics with a real Prometheus
  prometheus
  # tests and benchmarks: the ZooKeeper reference of perf/writes (a 3-server
  # ensemble on loopback, and zk_bench's C client)
  zookeeper libzookeeper-mt-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
# Through env: sudo drops DEBIAN_FRONTEND from the environment, and debconf
# would then ask (iperf3 asks whether to start a daemon) with its output
# sent to /dev/null.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
