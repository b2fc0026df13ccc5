# SPDX-License-Identifier: MIT
"""Checks of kashim audit's outputs for tests/t_audit.sh, independent of its
C code: the worst-case bounds are recomputed here by walking the kernel's
timers one firing at a time, and the options are compared with what
tests/sockpeek read from each socket.

  auditcheck.py json OUT CG RETRIES2     audit.json of the scene against sockpeek
  auditcheck.py text OUT                 audit.txt: rows, order, summary
  auditcheck.py prom OUT                 audit.prom: a strict parse, values
  auditcheck.py nobody OUT               nobody.out: its own process only
  auditcheck.py exitmid OUT              exitmid.out: the exit reported
  auditcheck.py model                    the arithmetic on hand-computed cases

Each prints nothing and exits 0 when right; otherwise an AssertionError."""
import json
import os
import math
import re
import sys

RTO_MIN = 200

MINE_UNIT = 'mi"n\\e.service'
UNITS = ["covered.service", "own.service", "none.service", "clients.service", MINE_UNIT]
NAMES = {"covered.service": "covered", "own.service": "own", "none.service": "none",
         "clients.service": "clients", MINE_UNIT: "mine"}
# connections, keepalive, user timeout, worst idle, worst busy (BUSY: from
# each connection's RTO, as read; 81.4 s and 25.6 s at a 200 ms RTO with
# tcp_retries2=5), listeners, listeners with keepalive
BUSY = "busy"
# The cgroup mode (AUDIT_COVER=cgroup) sets the options on connections only,
# not on the covered program's listening socket.
COVERED_LKA = 0 if os.environ.get("AUDIT_COVER") == "cgroup" else 1
EXPECT = {
    "covered.service": (1, 1, 1, 81.0, BUSY, 1, COVERED_LKA),
    "own.service": (1, 1, 0, 65.0, BUSY, 1, 1),
    "none.service": (2, 0, 0, None, BUSY, 1, 0),
    "clients.service": (3, 0, 0, None, BUSY, 0, 0),
    MINE_UNIT: (1, 0, 0, None, BUSY, 0, 0),
}


def expected(out, retries2=5):
    """EXPECT with the worst busy bound recomputed from audit.json's RTOs."""
    doc = json.load(open(out + "/audit.json"))
    want = {}
    for p in doc["programs"]:
        if p["unit"] in EXPECT:
            busy = max(busy_bound(s["rto_ms"], s["rto_max_ms"], s["user_timeout_ms"], retries2)
                       for s in p["sockets"])
            want[p["unit"]] = tuple(busy if v == BUSY else v for v in EXPECT[p["unit"]])
    return want


def seconds(v):
    """As the text output writes a bound."""
    return "never" if v is None else "%.0fs" % v if v == int(v) else "%.1fs" % v


def model_timeout(boundary, rto_max):
    """tcp_model_timeout(): retries2 retransmissions from a 200 ms timeout."""
    thresh = int(math.log2(rto_max // RTO_MIN))
    if boundary <= thresh:
        return ((2 << boundary) - 1) * RTO_MIN
    return ((2 << thresh) - 1) * RTO_MIN + (boundary - thresh) * rto_max


def busy_bound(rto, rto_max, user_timeout, retries2):
    """Seconds from a send to the kernel's giving up, the peer gone."""
    # the first retransmission, the kernel's clock starts here: a tail-loss
    # probe (due within one RTO) then the retransmission timeout
    first = 2 * rto
    if user_timeout:
        return (first + user_timeout) / 1000
    limit = model_timeout(retries2, rto_max)
    now, timeout = first, rto
    while True:  # each firing of the retransmission timer after the first
        timeout = min(timeout * 2, rto_max)
        now += timeout
        if now - first >= limit:
            return now / 1000


def idle_bound(keepalive, idle, interval, count, user_timeout):
    if not keepalive:
        return None
    idle, interval = idle * 1000, interval * 1000
    if not user_timeout:
        return (idle + interval * count) / 1000
    now = idle  # the first probe; with a user timeout the count is ignored
    while True:
        now += interval
        if now >= user_timeout:
            return now / 1000


def check_model():
    # Linux's documented defaults: 15 retries at a 200 ms RTO give 924.6 s of
    # modelled time; the timer, checked only when it fires, goes one more.
    assert model_timeout(15, 120000) == 924600
    assert model_timeout(5, 120000) == 12600
    assert model_timeout(3, 120000) == 3000
    assert busy_bound(200, 120000, 0, 15) == 1044.8
    assert busy_bound(300, 120000, 0, 3) == 4.8  # 2 x 0.3, then 0.6 + 1.2 + 2.4 >= 3.0
    assert busy_bound(1000, 120000, 0, 15) == 2 + (2 + 4 + 8 + 16 + 32 + 64) + 7 * 120  # 968 s
    assert busy_bound(200, 120000, 0, 5) == 25.6
    assert busy_bound(200, 120000, 81000, 15) == 81.4
    assert idle_bound(True, 37, 11, 4, 81000) == 81.0
    assert idle_bound(True, 50, 5, 3, 0) == 65.0
    assert idle_bound(True, 30, 10, 3, 5000) == 40.0  # first interval after the first probe
    assert idle_bound(False, 7200, 75, 9, 0) is None


def peek_lines(out, name):
    lines = {}
    for line in open("%s/%s.peek" % (out, name)):
        m = re.match(r"fd=(\d+) .*proto=tcp", line)
        if m:
            lines[int(m.group(1))] = line.strip()
    return lines


def pid_of(out, name):
    return int(open("%s/%s.pid" % (out, name)).read())


def check_json(out, cg, retries2):
    doc = json.load(open(out + "/audit.json"))
    retries2 = int(retries2)
    assert (doc["processes_read"], doc["processes_unreadable"], doc["processes_exited"],
            doc["connections"]) == (6, 0, 0, 8), {k: v for k, v in doc.items() if k != "programs"}
    assert doc["tcp_retries2"] == retries2, doc["tcp_retries2"]
    progs = {p["unit"]: p for p in doc["programs"] if p["cgroup"].startswith(cg + "/")}
    assert sorted(progs) == sorted(UNITS), list(progs)
    for unit, p in progs.items():
        name = NAMES[unit]
        assert p["cgroup"] == cg + "/" + unit, p["cgroup"]
        assert p["pids"] == [pid_of(out, name)], (unit, p["pids"])
        peek = peek_lines(out, name)
        got = (p["connections"], p["keepalive"], p["user_timeout"], p["worst_idle_s"],
               p["worst_busy_s"], p["listeners"], p["listeners_keepalive"])
        want = expected(out, retries2)[unit]
        assert got[:4] + got[5:] == want[:4] + want[5:] and abs(got[4] - want[4]) < 0.0015, (
            unit, got, want)
        assert len(p["sockets"]) == p["connections"]
        for s in p["sockets"]:
            want = "state=%s local=%s remote=%s keepalive=%d idle=%d interval=%d count=%d user_timeout=%d" % (
                s["state"], s["local"], s["remote"], s["keepalive"], s["idle_s"], s["interval_s"],
                s["count"], s["user_timeout_ms"])
            assert s["pid"] == pid_of(out, name)
            assert want in peek[s["fd"]], (unit, want, peek[s["fd"]])
            assert s["tcp_retries2"] == retries2, s
            idle = idle_bound(s["keepalive"], s["idle_s"], s["interval_s"], s["count"],
                              s["user_timeout_ms"])
            busy = busy_bound(s["rto_ms"], s["rto_max_ms"], s["user_timeout_ms"], retries2)
            assert s["idle_bound_s"] == idle and abs(s["busy_bound_s"] - busy) < 0.0015, (s, idle, busy)


def check_text(out):
    lines = open(out + "/audit.txt").read().split("\n")
    head = lines[0].split()
    assert head == ["PROGRAM", "UNIT/CGROUP", "PIDS", "CONNS", "KEEPALIVE", "USER_TIMEOUT",
                    "WORST_IDLE", "WORST_BUSY"], head
    rows = {}
    for line in lines[1:]:
        if not line:
            break
        f = line.split()
        rows[f[1]] = f[2:]
    pid = lambda name: str(pid_of(out, name))
    for unit, (conns, ka, ut, idle, busy, _, _) in expected(out).items():
        want = [pid(NAMES[unit]), str(conns), str(ka), str(ut), seconds(idle), seconds(busy)]
        assert rows[unit] == want, (unit, rows[unit], want)
    order = [l.split()[1] for l in lines[1:6]]
    assert order.index("own.service") > 2 and order.index("covered.service") > 2, order
    assert "LISTENING PROGRAM" in lines[7], lines[7]
    listen = {l.split()[1]: l.split()[2:] for l in lines[8:11]}
    assert listen == {"covered.service": [pid("covered"), "1", str(COVERED_LKA)],
                      "own.service": [pid("own"), "1", "1"],
                      "none.service": [pid("none"), "1", "0"]}, listen
    assert lines[12] == "6 processes read, 8 TCP connections; net.ipv4.tcp_retries2=5 here", lines[12]


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\} '
                    r'(\+Inf|-?[0-9]+(?:\.[0-9]+)?)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def check_prom(out):
    typed, helped, values = set(), set(), {}
    for line in open(out + "/audit.prom").read().split("\n")[:-1]:
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            # counters (the kernel's, per network namespace) end in _total
            kind, name = line.split()[3], line.split()[2]
            assert kind == ("counter" if name.endswith("_total") else "gauge"), line
            typed.add(line.split()[2])
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name = m.group(1)
        assert name in typed and name in helped, "no # TYPE/# HELP before " + name
        labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2))}
        values[(name, labels.get("unit", labels.get("outcome")), labels.get("bound"))] = m.group(3)
    for unit, (conns, ka, ut, idle, busy, listeners, lka) in expected(out).items():
        got = [values[("kashim_audit_" + n, unit, None)] for n in (
            "connections", "connections_keepalive", "connections_user_timeout",
            "listeners", "listeners_keepalive")]
        assert got == [str(v) for v in (conns, ka, ut, listeners, lka)], (unit, got)
        assert values[("kashim_audit_worst_case_seconds", unit, "idle")] == (
            "+Inf" if idle is None else "%.3f" % idle), unit
        assert values[("kashim_audit_worst_case_seconds", unit, "busy")] == "%.3f" % busy, unit
    assert values[("kashim_audit_processes", "read", None)] == "6"


def check_nobody(out):
    doc = json.load(open(out + "/nobody.out"))
    units = [p["unit"] for p in doc["programs"]]
    assert units == [MINE_UNIT], units
    assert doc["processes_read"] == 1 and doc["processes_unreadable"] == 5, doc


def check_exitmid(out):
    doc = json.load(open(out + "/exitmid.out"))
    assert doc["processes_exited"] == 1 and doc["processes_read"] == 5, doc
    units = sorted(p["unit"] for p in doc["programs"])
    assert "covered.service" in units and "clients.service" in units, units


if __name__ == "__main__":
    what = sys.argv[1]
    {"json": check_json, "text": check_text, "prom": check_prom, "nobody": check_nobody,
     "exitmid": check_exitmid, "model": check_model}[what](*sys.argv[2:])
