# SPDX-License-Identifier: MIT
"""kashim audit's busy bound against the kernel: run inside a fresh network
namespace (unshare -n), as root.  A client without kashim holds a loopback
connection; audit reads its worst case with data in flight; then every
packet is dropped (tc blackhole), the client sends 64 KiB, and the time
until the kernel gives up (the client's recv fails) is measured.

The route gets rto_min 300ms and net.ipv4.tcp_retries2=3, so the kernel's
decision does not sit on the edge of its model (at exactly the 200 ms
minimum RTO, the last check falls 200 ms short of the model and timer
slack decides).  Prints "bound MEASURED_S BOUND_S RTO_MS", or "notready: WHY"
when the connection did not form (within bounds made for a loaded
machine)."""
import json
import subprocess
import sys
import time

from scene import sh, wait_for

K, HOLD = sys.argv[1], sys.argv[2]
ADDR, PORT = "127.0.0.2", "7000"


def ss(*args):
    return subprocess.run(["ss", "-Htn"] + list(args), capture_output=True, text=True).stdout


sh("ip", "link", "set", "lo", "up")
sh("ip", "route", "replace", "local", "127.0.0.0/8", "dev", "lo", "table", "local", "proto", "kernel",
   "scope", "host", "src", "127.0.0.1", "rto_min", "300ms")
sh("sysctl", "-qw", "net.ipv4.tcp_retries2=3")
server = subprocess.Popen([sys.executable, HOLD, "server-recv", ADDR, PORT])
try:
    wait_for("the server's listener", lambda: ss("-l", "sport = :" + PORT))
    client = subprocess.Popen([sys.executable, HOLD, "client-send", ADDR, PORT],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    wait_for("the connection", lambda: ss("state", "established").count("\n") >= 2)
    doc = json.loads(subprocess.run([K, "audit", "--json"], capture_output=True, text=True,
                                    check=True).stdout)
    socks = [s for p in doc["programs"] for s in p["sockets"] if s["pid"] == client.pid]
    assert len(socks) == 1 and socks[0]["tcp_retries2"] == 3, socks
    sh("tc", "qdisc", "add", "dev", "lo", "root", "blackhole")
    start = time.monotonic()
    client.stdin.write("go\n")
    client.stdin.flush()
    line = client.stdout.readline()  # hold.py says how the wait ended
    took = time.monotonic() - start
    assert "TimeoutError" in line, line
    print("bound %.2f %.3f %d" % (took, socks[0]["busy_bound_s"], socks[0]["rto_ms"]))
finally:
    server.kill()
    subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], stderr=subprocess.DEVNULL)
