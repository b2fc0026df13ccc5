# SPDX-License-Identifier: MIT
"""kashim audit's evidence counters against a real dead peer: run inside a
fresh network namespace (unshare -n), as root, with the path of another
network namespace to run audit from (the test's own), so that audit reads
this one from outside.  A client under kashim (idle IDLE s, interval 1 s,
count 3) holds a loopback connection to a server without kashim; audit
reads the namespace's counters; then every packet is dropped (tc
blackhole) and the client waits until the kernel ends its connection.

The namespace's TCPKeepAlive must grow by exactly 3 (the probes) and
TCPAbortOnTimeout by exactly 1 (the connection), in audit's text, JSON and
Prometheus output alike, and agree with /proc/net/netstat read here.  A
probe answered before the blackhole would add to the count: the counter is
read here right after the blackhole and must still be audit's "before"
value; else the scene is run again with a longer idle time (the machine was
too slow for the shorter one).  Prints "moved PROBES ABORTS" or
"notready: WHY"; a wrong output raises."""
import json
import os
import re
import subprocess
import sys
import time

from scene import sh, wait_for

K, LIB, HOLD, OUTER = sys.argv[1:5]
ADDR, PORT = "127.0.0.1", 46010
PROBES = 3


def netstat():
    """TCPKeepAlive and TCPAbortOnTimeout of this namespace, read here."""
    lines = [l.split() for l in open("/proc/net/netstat") if l.startswith("TcpExt:")]
    row = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    return row["TCPKeepAlive"], row["TCPAbortOnTimeout"]


NETNS = "net:[%d]" % os.stat("/proc/self/ns/net").st_ino


def audit(*args):
    """audit run from the outer namespace; its output."""
    return subprocess.run(["nsenter", "--net=" + OUTER, K, "audit"] + list(args),
                          capture_output=True, text=True, check=True).stdout


def counters_all():
    """This namespace's two counters as each output format gives them."""
    doc = json.loads(audit("--json"))
    mine = [n for n in doc["network_namespaces"] if n["netns"] == NETNS]
    assert len(mine) == 1, doc["network_namespaces"]
    got = {"json": (mine[0]["tcp_keepalive_probes"], mine[0]["tcp_abort_on_timeout"])}
    prom = audit("--prometheus")
    vals = []
    for name in ("kashim_audit_tcp_keepalive_probes_total", "kashim_audit_tcp_abort_on_timeout_total"):
        m = re.findall(r'^%s\{netns="%s"\} (\d+)$' % (name, re.escape(NETNS)), prom, re.M)
        assert len(m) == 1, (name, m)
        vals.append(int(m[0]))
    got["prometheus"] = tuple(vals)
    m = re.findall(r"^  %s  (\d+) keepalive probes sent \(TCPKeepAlive\), (\d+) connections ended "
                   r"by a timeout \(TCPAbortOnTimeout\)$" % re.escape(NETNS), audit(), re.M)
    assert len(m) == 1, m
    got["text"] = tuple(map(int, m[0]))
    return got


def ss(*args):
    return subprocess.run(["ss", "-Htn"] + list(args), capture_output=True, text=True).stdout


def scene(idle):
    """One client's dead peer; None when a probe came before the blackhole."""
    env = dict(os.environ, LD_PRELOAD=LIB, KASHIM_IDLE=str(idle), KASHIM_INTERVAL="1",
               KASHIM_COUNT=str(PROBES))
    client = subprocess.Popen([sys.executable, HOLD, "client", ADDR, str(PORT)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        wait_for("the connection", lambda: ss("state", "established").count("\n") >= 2)
        before = counters_all()
        sh("tc", "qdisc", "add", "dev", "lo", "root", "blackhole")
        if netstat() != before["json"]:
            return None  # a probe was answered before the blackhole
        line = client.stdout.readline()  # how the client's wait ended
        assert "TimeoutError" in line, line
        after = counters_all()
        for fmt in after:
            assert before[fmt] == before["json"], (fmt, before)
            assert after[fmt] == after["json"] == netstat(), (fmt, after, netstat())
        return [a - b for a, b in zip(after["json"], before["json"])]
    finally:
        client.kill()
        client.wait()
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], stderr=subprocess.DEVNULL)


sh("ip", "link", "set", "lo", "up")
server = subprocess.Popen([sys.executable, HOLD, "server", ADDR, str(PORT)])
try:
    wait_for("the server's listener", lambda: ss("-l", "sport = :%d" % PORT))
    for idle in (2, 5, 15):
        moved = scene(idle)
        if moved is not None:
            print("moved %d %d idle %d" % (moved[0], moved[1], idle), flush=True)
            break
    else:
        print("notready: a keepalive probe came before the blackhole, even with 15 s idle",
              flush=True)
finally:
    server.kill()
    server.wait()
