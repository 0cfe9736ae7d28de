#!/usr/bin/env python3
"""perf/writes/threads.py LABEL=PID... — where a process's threads spend a
measurement, for writes.sh's "what binds" lines. Standard library only.

Runs until SIGTERM (or SIGINT), then prints one line per process:

  LABEL: main cpu X% wait Y% D Z% | io-wq cpu X% wait Y% D Z% | other cpu X% wait Y% D Z% [top: NAME cpu X% D Z%, ...]

- cpu and wait: from /proc/PID/task/TID/schedstat at start and end (time on
  a CPU, time runnable but waiting for one), exact, in % of the wall time;
  summed over the threads of each group, so a group of several threads can
  pass 100%.
- D: threads sampled every --interval-ms=N (default 20) in uninterruptible
  sleep (state D: mostly waiting for the disk, e.g. in fdatasync), summed
  over the group's threads, in % of the samples.
- groups: main is the thread whose TID is the PID (fdnode's engine); io-wq
  the io_uring workers (iou-wrk-*: the kernel's workers for the operations
  io_uring cannot do inline, fdatasync among them); other the rest (for a
  JVM all of its work: its threads carry their Java names, e.g.
  ZooKeeper's SyncThread, CommitProcWork, NIOWorkerThread); "top" names the
  three busiest other threads (by cpu + D) by their comm.

A last line gives this sampler's own CPU (it runs on the same cores).

Threads that start during the run count from when they are seen; threads
that end before the run does are not counted at all (the per-process CPU
that writes.sh prints from /proc/PID/stat does include them).
"""
import os
import resource
import signal
import sys
import time


def tasks(pid):
    try:
        return os.listdir("/proc/%s/task" % pid)
    except OSError:
        return []


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def group(pid, tid):
    if tid == pid:
        return "main"
    s = read("/proc/%s/task/%s/comm" % (pid, tid)) or ""
    return "io-wq" if s.startswith("iou-wrk") else "other"


def schedstat(pid):
    """{tid: (group, run_ns, wait_ns)}"""
    out = {}
    for tid in tasks(pid):
        s = read("/proc/%s/task/%s/schedstat" % (pid, tid))
        if not s:
            continue
        f = s.split()
        out[tid] = (group(pid, tid), int(f[0]), int(f[1]))
    return out


def main():
    interval = 0.020
    procs = []
    for a in sys.argv[1:]:
        if a.startswith("--interval-ms="):
            interval = float(a.split("=", 1)[1]) / 1000
            continue
        label, pid = a.split("=", 1)
        procs.append((label, pid))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    t0 = time.monotonic()
    start = {pid: schedstat(pid) for _, pid in procs}
    samples = 0
    dstate = {pid: {} for _, pid in procs}  # tid -> samples in D
    while not stop:
        samples += 1
        for _, pid in procs:
            for tid in tasks(pid):
                s = read("/proc/%s/task/%s/stat" % (pid, tid))
                if s and s[s.rindex(")") + 2] == "D":
                    dstate[pid][tid] = dstate[pid].get(tid, 0) + 1
        time.sleep(interval)
    wall_ns = (time.monotonic() - t0) * 1e9
    samples = max(samples, 1)
    for label, pid in procs:
        end = schedstat(pid)
        acc = {g: [0, 0, 0] for g in ("main", "io-wq", "other")}
        top = []
        for tid, (g, run, wait) in end.items():
            r0, w0 = (start[pid][tid][1], start[pid][tid][2]) if tid in start[pid] else (0, 0)
            d = dstate[pid].get(tid, 0)
            acc[g][0] += run - r0
            acc[g][1] += wait - w0
            acc[g][2] += d
            if g == "other":
                cpu = 100 * (run - r0) / wall_ns
                dp = 100 * d / samples
                name = (read("/proc/%s/task/%s/comm" % (pid, tid)) or "?").strip()
                top.append((cpu + dp, name, cpu, dp))
        parts = []
        for g in ("main", "io-wq", "other"):
            run, wait, d = acc[g]
            parts.append("%s cpu %.0f%% wait %.0f%% D %.0f%%"
                         % (g, 100 * run / wall_ns, 100 * wait / wall_ns, 100 * d / samples))
        top.sort(reverse=True)
        busy = ["%s cpu %.0f%% D %.0f%%" % (n, c, dp) for k, n, c, dp in top[:3] if k >= 1]
        print("%s: %s%s" % (label, " | ".join(parts), " [top: %s]" % ", ".join(busy) if busy else ""))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print("sampler: cpu %.0f%%" % (100 * (ru.ru_utime + ru.ru_stime) * 1e9 / wall_ns))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
