# SPDX-License-Identifier: MIT
"""How long kashim audit takes on a busy host: 50 processes holding 400
connected TCP sockets each (200 loopback connections, both ends), 20,000 in
all, read with `kashim audit --json`.  Run by `make bench` after run.py;
prints one table.  ROUNDS runs, median, min and max wall time."""
import json
import os
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


if __name__ == "__main__":
    main()
