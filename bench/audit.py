# SPDX-License-Identifier: MIT
"""How long kashim audit takes on a busy host: 50 processes holding 400
connected TCP sockets each (200 loopback connections, both ends), 20,000 in
all, read with `kashim audit --json`.  Then what kashim-audit.timer costs
each minute on a busy proxy: 100,000 TCP connections (50,000 loopback
pairs, both ends held, in a network namespace of the benchmark's own) read
with the timer's own command, `kashim audit --prometheus --output FILE`:
wall time and the peak resident memory of audit (the kernel's maxrss of
that one child).  The hard RLIMIT_NOFILE cannot be raised without
CAP_SYS_RESOURCE, so the connections are spread over as many processes as
the hard limit needs.  Then `ss -tni` and `ss -tnieop` on the same
sockets, once each, and audit's time as a ratio to theirs.  Run by `make
bench` after run.py; prints three tables.  ROUNDS runs, median, min and
max."""
import json
import os
import tempfile
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KASHIM = os.path.join(ROOT, "kashim")
PROCESSES = 50
PAIRS = 200  # connections made per process; it holds both ends
ROUNDS = 5

HOLDER = r"""
import socket, sys
l = socket.socket()
l.bind(("127.0.0.1", 0)); l.listen(1024)
held = []
for _ in range(%d):
    c = socket.create_connection(l.getsockname())
    held += [c, l.accept()[0]]
print("ready", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin or ends
""" % PAIRS


def start_holders():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * PAIRS + 64))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(PROCESSES)]
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise SystemExit("a holder process did not start")
    return procs


def main():
    procs = start_holders()
    try:
        pids = {p.pid for p in procs}
        out = subprocess.run([KASHIM, "audit", "--json"], capture_output=True, text=True, check=True)
        doc = json.loads(out.stdout)
        held = sum(len([s for s in p["sockets"] if s["pid"] in pids]) for p in doc["programs"])
        if held != PROCESSES * 2 * PAIRS:
            raise SystemExit("audit saw %d of the %d connections" % (held, PROCESSES * 2 * PAIRS))
        times = []
        for _ in range(ROUNDS):
            t = time.monotonic()
            subprocess.run([KASHIM, "audit", "--json"], stdout=subprocess.DEVNULL, check=True)
            times.append(time.monotonic() - t)
        total = doc["connections"]
        print("\n| kashim audit --json (%d rounds) | processes read | TCP connections | median | min | max |"
              % ROUNDS)
        print("|---|---|---|---|---|---|")
        print("| %d processes x %d connections held | %d | %d | %.2f s | %.2f s | %.2f s |" % (
            PROCESSES, 2 * PAIRS, doc["processes_read"], total, statistics.median(times),
            min(times), max(times)))
    finally:
        for p in procs:
            p.kill()
            p.wait()


BIG = 100000  # TCP sockets in connections, both ends counted
BIG_PORT = 46100  # holder i listens on 127.0.0.1:BIG_PORT + i, in its own namespace
BIG_ROUNDS = 3

# One holder of the big scene: pairs loopback connections, both ends held.
# The first one brings the namespace's lo up and widens its ephemeral
# ports (the namespace is the benchmark's own).
BIG_HOLDER = r"""
import os, socket, subprocess, sys
pairs, port, first = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
if first:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
        f.write("1024 45999")  # below the listeners' ports
l = socket.socket()
l.bind(("127.0.0.1", port)); l.listen(4096)
held = []
for _ in range(pairs):
    c = socket.create_connection(("127.0.0.1", port))
    held += [c, l.accept()[0]]
print("ready", flush=True)
sys.stdin.read()
"""


# Prints how many sockets of the given pids audit's JSON lists, the
# processes read and the connections.
COUNT_HELD = r"""
import json, sys
doc = json.load(open(sys.argv[1]))
pids = set(map(int, sys.argv[2:]))
held = sum(1 for p in doc["programs"] for s in p["sockets"] if s["pid"] in pids)
print(held, doc["processes_read"], doc["connections"])
"""


def start_big_holders():
    """The 100,000 sockets, in a new network namespace; [] without root."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per = (hard - 64) // 2  # pairs a process may hold: 2 descriptors each
    nprocs = -(-BIG // 2 // per)
    pairs = [BIG // 2 // nprocs + (i < BIG // 2 % nprocs) for i in range(nprocs)]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited
    procs = []
    for i, n in enumerate(pairs):
        enter = ["unshare", "-n"] if i == 0 else ["nsenter", "--net=/proc/%d/ns/net" % procs[0].pid]
        procs.append(subprocess.Popen(enter + [sys.executable, "-c", BIG_HOLDER, str(n),
                                               str(BIG_PORT + i), "1" if i == 0 else "0"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        if procs[-1].stdout.readline().strip() != "ready":
            raise SystemExit("a holder of the 100,000 connections did not start")
    return procs


def timed(argv):
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one
    command: on a loaded machine the CPU time is the steadier figure."""
    t = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = status  # reaped here, not by Popen
    if status:
        raise SystemExit("%s exited with %d" % (" ".join(argv), status))
    return time.monotonic() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def timed_audit(args):
    return timed([KASHIM, "audit"] + args)


# What an operator would run by hand on the same sockets, for scale: ss
# reads them from the kernel's socket diagnostics (netlink), in the
# holders' network namespace (nsenter execs ss: the rusage is ss's own).
# -tnieop adds the owning processes, which ss finds by reading every
# process's descriptors, as audit does.
SS_COMMANDS = (["ss", "-tni"], ["ss", "-tnieop"])


def print_ss_ratios(netns, audit_runs):
    """One row per ss command, and audit's figures as ratios to each."""
    audit_wall = statistics.median(r[0] for r in audit_runs)
    audit_cpu = statistics.median(r[1] for r in audit_runs)
    print("\n| the same sockets, one run each | wall | CPU | audit's median wall / this | audit's CPU / this |")
    print("|---|---|---|---|---|")
    for argv in SS_COMMANDS:
        wall, cpu, _ = timed(["nsenter", "--net=" + netns] + argv)
        print("| `%s` | %.2f s | %.2f s | %.1f | %.1f |" % (
            " ".join(argv), wall, cpu, audit_wall / wall, audit_cpu / cpu))


def big():
    if os.geteuid() != 0:
        print("\n(100,000 connections: skipped, not root: the connections are made in a "
              "network namespace of the benchmark's own)")
        return
    # the machine's own load, before the benchmark adds to it
    start_load = os.getloadavg()
    procs = start_big_holders()
    try:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "kashim.prom")
            # The check reads audit's JSON in a child: a child's peak RSS
            # (ru_maxrss) counts the pages of the process it was forked
            # from, so this process must stay small.
            with open(os.path.join(d, "audit.json"), "w") as f:
                subprocess.run([KASHIM, "audit", "--json"], stdout=f, check=True)
            held, read, total = map(int, subprocess.run(
                [sys.executable, "-c", COUNT_HELD, os.path.join(d, "audit.json")] +
                [str(p.pid) for p in procs], capture_output=True, text=True, check=True).stdout.split())
            if held != BIG:
                raise SystemExit("audit saw %d of the %d connections" % (held, BIG))
            runs = [timed_audit(["--prometheus", "--output", out]) for _ in range(BIG_ROUNDS)]
            size = os.path.getsize(out)
        times = [r[0] for r in runs]
        cpu = [r[1] for r in runs]
        rss = [r[2] for r in runs]
        print("\n| kashim audit --prometheus --output FILE (%d rounds) | processes read | TCP connections "
              "| wall: median | min | max | CPU: median | peak RSS (max) | file |" % BIG_ROUNDS)
        print("|---|---|---|---|---|---|---|---|---|")
        print("| %d processes holding %d connections in all | %d | %d | %.2f s | %.2f s | %.2f s "
              "| %.2f s | %.0f MiB | %d bytes |" % (
                  len(procs), BIG, read, total, statistics.median(times),
                  min(times), max(times), statistics.median(cpu), max(rss), size))
        print("(load average at the start: %.1f, %.1f, %.1f; when done: %.1f, %.1f, %.1f; the peak "
              "RSS is the larger of audit's and the %.0f MiB of the benchmark process it was forked "
              "from)" % (start_load + os.getloadavg() +
                         (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,)))
        # the holders are still up: ss reads the very same sockets
        print_ss_ratios("/proc/%d/ns/net" % procs[0].pid, runs)
        print("(load average after ss: %.1f, %.1f, %.1f)" % os.getloadavg())
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
    big()
