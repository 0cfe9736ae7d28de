#!/usr/bin/env python3
"""perf/fanout/budget.py — will this fan-out run fit in this machine's memory and disk?

fanout.sh runs it before it creates anything (every mode). It computes what
the run needs and prints one `budget:` line per item, then the totals
against MemAvailable and the data dir's free space, and exits 1 with a
suggestion (fewer nodes, a smaller --size or --chunk) when either does not
fit, 0 when both do (2 on bad arguments). After a line `json:`, `key value`
lines for the run's JSON.

Memory, per process kind (resident bytes that are the process's own;
shared library text is counted once):
  fdnode   measured with the run's own settings (--probe: one fdnode with
           chunk_buf, pool_buffers and window_chunks as the run configures
           them, started in an anonymous network namespace of its own
           (`unshare -n`, loopback only, a scheduler address that refuses),
           its RssAnon read from /proc/<pid>/status once it listens; the
           process and its temp dir are gone before this returns), plus
           NODE_RUN_EXTRA_BYTES, what a node grew by while it moved a
           version (measured: see docs/PERFORMANCE.md, "96 nodes"). Without
           --probe (--plan, no root): BASE + pool_buffers x chunk_buf, the
           same formula the probe confirmed.
  origins  the same with the origins' pool_buffers.
  fdsched, fdadmin, iperf3: fixed allowances, measured once (below).
  kernel   per namespace (veths, bridge ports, qdiscs, routes) and per TCP
           connection's socket buffers, allowances measured once (below).
Page cache is reclaimable and not counted, except where the data itself
is in memory: a data dir on tmpfs counts its bytes against memory as well.
Usable: 80% of MemAvailable (the machine is shared), 90% of the data dir's
free space (as the disk line of the plan always said).

Disk: every node and origin stores each version (a --delta run keeps two),
plus the source file fdadmin publishes; --star, --validate and --up write
nothing there.

Standard library only.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
# Measured 2026-12-07 (docs/PERFORMANCE.md, "96 nodes (issue 23, run f)").
# An idle fdnode with threads = 1: RssAnon 41884 kB with a pinned pool of
# 32 x 1 MiB (VmPin 32768 kB), so about 9 MiB besides the pool.
NODE_BASE_BYTES = 10 * MiB
# What a node's own memory grew by from listening to the end of a version:
# RssAnon 40.9 MiB at the probe, 44.8-45.1 MiB after run (f) (VmHWM 54.6
# MiB against the probe's VmRSS 50.4), about 4 MiB; twice that.
NODE_RUN_EXTRA_BYTES = 8 * MiB
SCHED_BYTES = 128 * MiB    # fdsched: RssAnon 72.5 MiB with 11 daemons, 76.1 MiB with 99
ADMIN_BYTES = 64 * MiB     # fdadmin publish (reads the source through its pool)
IPERF3_BYTES = 8 * MiB     # one iperf3 process (about 2-4 MiB)
# Kernel allowances, not measured one by one: per namespace (a veth pair,
# a bridge port or router interfaces, two tbf qdiscs, routes) and per node
# (its TCP sockets' buffers: parents, children, fdsched, repair). Run (f)
# as a whole took 4.76 GB of MemAvailable (24.34 GB before the budget,
# 19.58 GB at the lowest during the version) against the 6.37 GB this
# budget asks for it.
NS_BYTES = 2 * MiB
NODE_SOCKETS_BYTES = 8 * MiB
MEM_USABLE = 0.80
DISK_USABLE = 0.90


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def fs_type(path):
    """The filesystem type of path, from /proc/mounts (longest mount prefix)."""
    path = os.path.realpath(path)
    best, kind = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            _, mnt, typ = line.split()[:3]
            mnt = mnt.replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, typ
    return kind


def probe_node(build_dir, chunk, pool, window):
    """One fdnode with the run's settings; returns (rss_anon, vm_rss, how)."""
    fdnode = os.path.join(build_dir, "node/fdnode")
    fdadmin = os.path.join(build_dir, "admin/fdadmin")
    with tempfile.TemporaryDirectory(prefix="fdfan-budget-") as d:
        subprocess.run([fdadmin, "keygen", d + "/admin.pem", d + "/admin.pub",
                        "--cluster", d + "/cluster.key"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.mkdir(d + "/n")
        with open(d + "/n.ini", "w") as f:
            f.write("[node]\nid = probe\nrole = node\nregion = r0\nzone = z0\n"
                    "listen = 127.0.0.1:0\nport_file = %s/n.port\ndata_dir = %s/n\n"
                    "scheduler = 127.0.0.1:9\ncluster_key_file = %s/cluster.key\n"
                    "admin_pub_file = %s/admin.pub\nheartbeat_ms = 500\nthreads = 1\n"
                    "chunk_buf = %d\npool_buffers = %d\nwindow_chunks = %d\nlog_level = warn\n"
                    % (d, d, d, d, chunk, pool, window))
        log = open(d + "/log", "w")
        p = subprocess.Popen(["unshare", "-n", "sh", "-c",
                              'ip link set lo up && exec "$0" --config "$1"', fdnode, d + "/n.ini"],
                             stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and p.poll() is None:
                if os.path.exists(d + "/n.port") and os.path.getsize(d + "/n.port") > 0:
                    break
                time.sleep(0.05)
            if p.poll() is not None or not os.path.exists(d + "/n.port"):
                log.close()
                with open(d + "/log") as f:
                    tail = f.read()[-400:]
                raise RuntimeError("the probe fdnode did not start: " + tail.strip())
            time.sleep(0.3)  # past start-up's last allocations
            st = {}
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if v.strip().endswith("kB"):
                        st[k] = int(v.split()[0]) * 1024
        finally:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
    how = ("measured: one fdnode (chunk_buf %d, pool_buffers %d, threads 1) in an anonymous "
           "netns, RssAnon %.1f MiB, VmRSS %.1f MiB, VmPin %.1f MiB"
           % (chunk, pool, st["RssAnon"] / MiB, st["VmRSS"] / MiB, st.get("VmPin", 0) / MiB))
    return st["RssAnon"], how


def gb(b):
    return "%.2f GB" % (b / 1e9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", required=True, choices=["run", "star", "validate", "up", "plan"])
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--origins", type=int, required=True)
    ap.add_argument("--namespaces", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--chunk", type=int, required=True)
    ap.add_argument("--pool-buffers", type=int, required=True)
    ap.add_argument("--origin-pool-buffers", type=int, required=True)
    ap.add_argument("--window-chunks", type=int, default=0)
    ap.add_argument("--versions", type=int, default=1)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--fs", default="host", choices=["host", "xfs"])
    ap.add_argument("--build-dir")
    ap.add_argument("--probe", action="store_true", help="measure one fdnode (root)")
    a = ap.parse_args()

    items = []  # (label, bytes)
    pool = a.pool_buffers * a.chunk
    opool = a.origin_pool_buffers * a.chunk
    if a.mode in ("run", "plan"):
        how = "estimate: %.0f MiB + pool_buffers %d x chunk_buf %d (no probe)" % (
            NODE_BASE_BYTES / MiB, a.pool_buffers, a.chunk)
        node = NODE_BASE_BYTES + pool
        if a.probe and a.build_dir:
            try:
                node, how = probe_node(a.build_dir, a.chunk, a.pool_buffers, a.window_chunks)
            except (OSError, RuntimeError, subprocess.CalledProcessError, KeyError) as e:
                how = "estimate (the probe failed: %s): %.0f MiB + pool" % (e, NODE_BASE_BYTES / MiB)
        node_run = node + NODE_RUN_EXTRA_BYTES
        origin_run = node_run - pool + opool
        print("budget: fdnode resident: %.1f MiB at start (%s) + %.0f MiB while moving a version = %.1f MiB per node"
              % (node / MiB, how, NODE_RUN_EXTRA_BYTES / MiB, node_run / MiB))
        per_node = node_run + NODE_SOCKETS_BYTES
        items += [("%d nodes x %.1f MiB" % (a.nodes, node_run / MiB), a.nodes * node_run),
                  ("%d origins x %.1f MiB" % (a.origins, origin_run / MiB), a.origins * origin_run),
                  ("fdsched + fdadmin", SCHED_BYTES + ADMIN_BYTES),
                  ("node sockets (kernel) %d x %.0f MiB" % (a.nodes + a.origins, NODE_SOCKETS_BYTES / MiB),
                   (a.nodes + a.origins) * NODE_SOCKETS_BYTES)]
    elif a.mode == "star":
        per_node = 2 * IPERF3_BYTES + NODE_SOCKETS_BYTES
        items += [("iperf3 %d servers + %d clients x %.0f MiB" % (a.nodes, a.nodes, IPERF3_BYTES / MiB),
                   2 * a.nodes * IPERF3_BYTES),
                  ("node sockets (kernel) %d x %.0f MiB" % (a.nodes, NODE_SOCKETS_BYTES / MiB),
                   a.nodes * NODE_SOCKETS_BYTES)]
    else:  # validate, up: the namespaces and a handful of iperf3 at a time
        per_node = 2 * IPERF3_BYTES
        items += [("iperf3 (one flow per node at most)", 2 * a.nodes * IPERF3_BYTES)]
    items.append(("namespaces (kernel) %d x %.0f MiB" % (a.namespaces, NS_BYTES / MiB), a.namespaces * NS_BYTES))

    # Disk: what the run stores in the data dir.
    disk = 0
    if a.mode in ("run", "plan"):
        disk = (a.nodes + a.origins + 1) * a.size * a.versions
    kind = fs_type(a.data_dir) if os.path.isdir(a.data_dir) else "?"
    if kind in ("tmpfs", "ramfs") and a.fs == "host" and disk:
        items.append(("data on %s (%s) is memory" % (kind, a.data_dir), disk))
    mem_need = sum(b for _, b in items)
    avail = meminfo("MemAvailable")
    mem_usable = int(avail * MEM_USABLE)
    for label, b in items:
        print("budget:   memory %-44s %9.1f MiB" % (label, b / MiB))
    mem_ok = mem_need <= mem_usable
    print("budget: memory: %s needed; MemAvailable %s, %.0f%% usable = %s: %s"
          % (gb(mem_need), gb(avail), MEM_USABLE * 100, gb(mem_usable), "fits" if mem_ok else "DOES NOT FIT"))
    disk_ok = True
    free = 0
    if os.path.isdir(a.data_dir):
        sv = os.statvfs(a.data_dir)
        free = sv.f_bavail * sv.f_frsize
    disk_usable = int(free * DISK_USABLE)
    if disk:
        disk_ok = disk <= disk_usable
        room = max(0, disk_usable // (a.size * a.versions) - a.origins - 1)
        print("budget: disk: (%d nodes + %d origins + the source) x %d version(s) x %s = %s needed; "
              "%s free in %s (%s, %.0f%% usable): room for %d nodes: %s"
              % (a.nodes, a.origins, a.versions, gb(a.size), gb(disk), gb(free), a.data_dir, kind,
                 DISK_USABLE * 100, room, "fits" if disk_ok else "DOES NOT FIT"))
    else:
        print("budget: disk: nothing stored in %s (%s free)" % (a.data_dir, gb(free)))

    if not (mem_ok and disk_ok):
        hints = []
        if not mem_ok:
            per = per_node + NS_BYTES  # a node's share; the rest is fixed
            fit = int((mem_usable - (mem_need - a.nodes * per)) // per)
            hints.append("at most about %d nodes" % max(0, fit))
            if a.mode in ("run", "plan"):
                hints.append("a smaller --chunk (each node pins pool_buffers %d x chunk_buf)" % a.pool_buffers)
        if not disk_ok:
            room = max(0, disk_usable // (a.size * a.versions) - a.origins - 1)
            hints.append("at most %d nodes of this --size" % room)
            hints.append("a --size of at most %s for %d nodes"
                         % (gb(disk_usable // ((a.nodes + a.origins + 1) * a.versions)), a.nodes))
            hints.append("or another --data-dir")
        print("budget: DOES NOT FIT this machine; try %s" % "; ".join(hints))
    print("json:")
    print("budget.mem_need_bytes %d" % mem_need)
    print("budget.mem_available_bytes %d" % avail)
    print("budget.disk_need_bytes %d" % disk)
    print("budget.disk_free_bytes %d" % free)
    return 0 if (mem_ok and disk_ok) else 1


if __name__ == "__main__":
    sys.exit(main())
