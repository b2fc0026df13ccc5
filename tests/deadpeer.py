#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Dead-peer scenarios: how long a real, unmodified program takes to notice
that its peer is gone, with kashim and without it.

  deadpeer.py run SCENARIO PROGRAM [--without]   one run, one JSON line
  deadpeer.py run SCENARIO tcphold --cgroup DIR  the same, kashim's cgroup mode:
                                                 the program is moved into DIR
                                                 (kashim attach done by the caller)
  deadpeer.py run SCENARIO PROGRAM --stall S     the same, the program stopped
                                                 for S s once it listens (a
                                                 loaded machine, on purpose)
  deadpeer.py report [--json] [--jobs N]         every run, as a table

Each run happens in a private network namespace of its own (the script
re-executes itself under `unshare -n`), on its loopback; the peer vanishes
when `tc qdisc add dev lo root blackhole` drops every packet.  Nothing
leaves the namespace, every wait is bounded by --cap, and the namespace,
its qdisc and its processes go away when the run ends.  Needs root.

Timings (kashim's side): idle 2 s, interval 1 s, count 2, user timeout
auto = 4 s.  The measured time runs from the moment the kernel's own clock
starts (the blackhole for "idle" and "inflight"; the program's SYN for
"connect"; the peer's last packet, its byte or its FIN, for "reboot" and
"closewait") to the moment the program noticed: it exited on the error, or
released the socket.

The scene is made ready by waiting for states, never for a guessed time:
the program holds its connection (accepted, not only queued on its
listener; with kashim, carrying kashim's options), a CLOSE-WAIT socket is
the program's own, a connect has sent its SYN.  Each wait is bounded (60 s,
for a loaded machine); when one runs out the run's error says "the scene
did not get ready: ..." and nothing is measured."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.environ.get("TEST_LIB") or os.path.join(ROOT, "libkashim.so")
HOLD = os.path.join(ROOT, "tests", "helpers", "hold.py")
PEEK = os.path.join(ROOT, "tests", "sockpeek")
PY = "/usr/bin/python3"
TCPHOLD = os.path.join(ROOT, "tests", "tcphold")  # a static program
PORT = 7000
IDLE, INTERVAL, COUNT = 2, 1, 2
BOUND = IDLE + INTERVAL * COUNT  # also the automatic user timeout
CAP = 12.0
READY = 60.0  # the bound of every wait for the scene (a loaded machine)
KASHIM_OPTIONS = "keepalive=1 idle=%d interval=%d count=%d " % (IDLE, INTERVAL, COUNT)


# The peer of "reboot" and "closewait": connects, then for each line on
# stdin sends one byte ("byte") or closes ("close"), and says "done" with
# the time it did (CLOCK_MONOTONIC, one clock for every process here).  The
# last packet the program receives is then sent when the run says, right
# before the peer vanishes: the kernel counts the idle time from it, and so
# does the run's clock (the time it takes to see the effect and drop the
# peer, longer on a loaded machine, is then no part of the measurement).
PEER = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
for line in sys.stdin:
    if line.strip() == "byte":
        c.sendall(b"b")
    else:
        c.close()
    print("done %.6f" % time.monotonic(), flush=True)
"""


class NotReady(Exception):
    """The scene did not form: nothing may be measured on it."""

SCENARIOS = {
    "idle": "idle connection, peer vanishes",
    "inflight": "data in flight, peer vanishes",
    "connect": "peer unreachable during connect()",
    "reboot": "peer rebooted (forgot the connection)",
    "closewait": "peer closed and vanished (CLOSE_WAIT)",
}
PROGRAMS = {
    "idle": ["python3", "socat", "nc", "nginx"],
    "inflight": ["python3", "socat", "nc", "nginx"],
    "connect": ["python3", "socat", "nc"],
    "reboot": ["python3", "socat", "nc"],
    "closewait": ["python3", "socat"],
}


def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10)


class Run:
    """One scenario for one program, inside this process's namespace."""

    def __init__(self, scenario, program, kashim, cap, cgroup=None, stall=0.0):
        self.scenario, self.program, self.kashim, self.cap = scenario, program, kashim, cap
        self.cgroup = cgroup  # kashim by the cgroup mode, not LD_PRELOAD
        self.stall = stall  # seconds the program is stopped once it listens
        self.tmp = tempfile.mkdtemp(prefix="deadpeer.")
        os.chmod(self.tmp, 0o755)  # nginx workers run as nobody
        self.procs = []
        self.subject = None  # the program under test
        self.how = ""

    # -- processes ---------------------------------------------------
    def start(self, argv, under_test=False, stdin=subprocess.DEVNULL):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if under_test and self.kashim and self.cgroup:
            # Into the cgroup before it starts: the shell moves itself, then
            # execs the program (the same pid).
            argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', self.cgroup] + argv
        elif under_test and self.kashim:
            env.update(LD_PRELOAD=LIB, KASHIM_IDLE=str(IDLE),
                       KASHIM_INTERVAL=str(INTERVAL), KASHIM_COUNT=str(COUNT))
        log = open(os.path.join(self.tmp, "p%d.log" % len(self.procs)), "w+")
        p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        p.log = log
        self.procs.append(p)
        if under_test:
            self.subject = p
        return p

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            p.log.close()
        subprocess.run(["rm", "-rf", self.tmp])

    def output(self, p):
        p.log.flush()
        p.log.seek(0)
        return p.log.read()

    # -- the network -------------------------------------------------
    def sockets(self, state=None):
        """Lines of `ss` for connections on PORT, optionally in one state."""
        args = ["ss", "-Htanp"]
        if state:
            args += ["state", state]
        out = sh(*args, "( sport = :%d or dport = :%d )" % (PORT, PORT)).stdout
        return [line for line in out.splitlines() if line.strip()]

    def wait_until(self, what, cond, limit=READY):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if cond():
                return
            time.sleep(0.02)
        raise NotReady("%s, not within %g s" % (what, limit))

    def subject_pids(self):
        """The program under test, and an nginx master's workers."""
        pids = [self.subject.pid]
        if self.program == "nginx":
            for d in os.listdir("/proc"):
                try:
                    stat = open("/proc/%s/stat" % d).read()
                except (OSError, ValueError):
                    continue
                if d.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == self.subject.pid:
                    pids.append(int(d))
        return pids

    def held(self, state):
        """sockpeek's lines of the program's connections on PORT in STATE:
        sockets in its descriptors, not ones waiting in a listen queue.  (A
        SYN_SENT socket has no peer name yet: any is the one.)"""
        lines = []
        for pid in self.subject_pids():
            out = subprocess.run([PEEK, str(pid)], capture_output=True, text=True).stdout
            lines += [line for line in out.splitlines() if " proto=tcp state=%s " % state in line
                      and (":%d " % PORT in line or state == "SYN_SENT")]
        return lines

    def holds(self, state="ESTABLISHED"):
        """Waits until the program holds a connection in STATE; with kashim,
        until it carries kashim's options (the preload sets them right after
        accept() returns, so for a moment an accepted socket has none).  A
        socket that never gets them is left to the measurement to show."""
        self.wait_until("%s holding a connection in %s" % (self.program, state),
                        lambda: self.held(state))
        if self.kashim:
            try:
                self.wait_until("kashim's options", lambda: any(
                    KASHIM_OPTIONS in line for line in self.held(state)), limit=2.0)
            except NotReady:
                pass

    def listening(self):
        self.wait_until("a listener", lambda: any(
            "LISTEN" in line for line in self.sockets()))
        if self.stall:
            # What a loaded machine does at random: the program is not
            # scheduled for a while, and the peer's packets queue up.
            os.kill(self.subject.pid, signal.SIGSTOP)
            timer = threading.Timer(self.stall, self.resume)
            timer.daemon = True
            timer.start()

    def resume(self):
        try:
            os.kill(self.subject.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def blackhole(self, on=True):
        verb = "add" if on else "del"
        r = sh("tc", "qdisc", verb, "dev", "lo", "root", "blackhole")
        if r.returncode:
            raise RuntimeError("tc qdisc %s: %s" % (verb, r.stderr.strip()))

    # -- what "noticed" means -----------------------------------------
    def exited(self):
        if self.subject.poll() is None:
            return False
        out = self.output(self.subject).strip().splitlines()
        last = out[-1] if out else ""
        if self.program == "python3" and last.startswith("error "):
            self.how = last.split(" ")[1]  # the exception's class
        elif self.program == "tcphold" and last.startswith("error "):
            self.how = last[len("error "):]
        elif self.program == "socat" and " E " in last:
            self.how = "socat: " + last.rsplit(": ", 1)[-1]  # its strerror
        else:
            self.how = "%s exited (status %d)" % (self.program, self.subject.returncode)
        return True

    def nginx_released(self):
        """No nginx process holds a connection on PORT any more."""
        held = [line for line in self.sockets() if "nginx" in line and "LISTEN" not in line]
        if held:
            return False
        self.how = "nginx closed the connection"
        return True

    def peer(self):
        return self.start([PY, "-c", PEER, "127.0.0.1", str(PORT)], stdin=subprocess.PIPE)

    def tell(self, peer, what):
        """The peer does WHAT; returns, once it has, the time it did."""
        n = self.output(peer).count("done") + 1
        peer.stdin.write(what.encode() + b"\n")
        peer.stdin.flush()
        self.wait_until("the peer's " + what, lambda: self.output(peer).count("done") >= n)
        return float(re.findall(r"^done (\S+)$", self.output(peer), re.M)[n - 1])

    def nginx_sending(self):
        """nginx's side of the connection has had data acknowledged."""
        out = sh("ss", "-Htni", "state", "established", "( sport = :%d )" % PORT).stdout
        return any(int(n) > 0 for n in re.findall(r"bytes_acked:(\d+)", out))

    def left_close_wait(self):
        """The program's accepted socket is no longer in CLOSE-WAIT."""
        r = subprocess.run([PEEK, str(self.subject.pid)], capture_output=True, text=True)
        if r.returncode and self.subject.poll() is None:
            raise RuntimeError("sockpeek %d: %s" % (self.subject.pid, r.stderr.strip()))
        lines = r.stdout.splitlines()
        mine = [line for line in lines
                if "local=127.0.0.1:%d " % PORT in line and "state=LISTEN" not in line]
        if any("state=CLOSE_WAIT" in line for line in mine):
            return False
        state = re.search(r"state=(\S+)", mine[0]).group(1) if mine else "fd closed"
        self.how = "socket now " + state
        return True

    def measure(self, noticed, t0):
        end = t0 + self.cap
        while time.monotonic() < end:
            if noticed():
                return time.monotonic() - t0
            time.sleep(0.01)
        return None

    # -- the programs ---------------------------------------------------
    def nginx(self, extra=""):
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(os.path.join(self.tmp, "big"), "wb") as f:
            f.truncate(1 << 30)
        with open(conf, "w") as f:
            f.write("""worker_processes 1; daemon off; error_log %(t)s/error.log info;
pid %(t)s/nginx.pid; events { worker_connections 64; }
http { access_log off; client_body_temp_path %(t)s/b; proxy_temp_path %(t)s/p;
  fastcgi_temp_path %(t)s/f; uwsgi_temp_path %(t)s/u; scgi_temp_path %(t)s/s;
  server { listen 127.0.0.1:%(port)d; root %(t)s; %(extra)s } }
""" % {"t": self.tmp, "port": PORT, "extra": extra})
        return self.start(["nginx", "-p", self.tmp, "-c", conf], under_test=True)

    def server_cmd(self, reading=True):
        listen = "TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr" % PORT
        if self.program == "python3":
            return [PY, HOLD, "server-recv" if reading else "server", "127.0.0.1", str(PORT)]
        if self.program == "socat":
            if reading:
                return ["socat", "-u", listen, "OPEN:/dev/null"]
            return ["socat", "-u", "EXEC:sleep 600", listen]  # never reads the socket
        if self.program == "nc":
            return ["nc", "-d", "-l", "127.0.0.1", str(PORT)]
        if self.program == "tcphold":
            return [TCPHOLD, "serve", str(PORT)]
        raise ValueError(self.program)

    def client_cmd(self):
        if self.program == "python3":
            return [PY, HOLD, "client-send", "127.0.0.1", str(PORT)]
        if self.program == "socat":
            return ["socat", "STDIO", "TCP4:127.0.0.1:%d" % PORT]
        if self.program == "nc":
            return ["nc", "127.0.0.1", str(PORT)]
        if self.program == "tcphold":
            return [TCPHOLD, "connect", str(PORT)]
        raise ValueError(self.program)

    def connect_cmd(self):
        if self.program == "python3":
            return [PY, HOLD, "connect", "127.0.0.1", str(PORT)]
        if self.program == "socat":
            return ["socat", "-u", "TCP4:127.0.0.1:%d" % PORT, "OPEN:/dev/null"]
        if self.program == "tcphold":
            return [TCPHOLD, "connect", str(PORT)]
        return ["nc", "127.0.0.1", str(PORT)]

    # -- the scenarios ----------------------------------------------------
    def idle(self):
        """A server waits on a quiet client; the client vanishes."""
        if self.program == "nginx":
            self.nginx()
            noticed = self.nginx_released
        else:
            self.start(self.server_cmd(), under_test=True)
            noticed = self.exited
        self.listening()
        self.start([PY, HOLD, "chatty", "127.0.0.1", str(PORT)])
        self.holds()
        self.blackhole()
        return self.measure(noticed, time.monotonic())

    def inflight(self):
        """The program has sent data the peer will never acknowledge."""
        if self.program == "nginx":
            self.nginx("location / { limit_rate 2m; }")
            self.listening()
            self.start([PY, HOLD, "http-read", "127.0.0.1", str(PORT), "/big"])
            self.holds()
            self.wait_until("nginx sending the body", self.nginx_sending)
            self.blackhole()
            return self.measure(self.nginx_released, time.monotonic())
        self.start([PY, HOLD, "server", "127.0.0.1", str(PORT)])
        self.listening()
        client = self.start(self.client_cmd(), under_test=True, stdin=subprocess.PIPE)
        self.holds()
        self.blackhole()
        t0 = time.monotonic()
        client.stdin.write(b"go\n" + b"y" * 65536)
        client.stdin.flush()
        return self.measure(self.exited, t0)

    def connect(self):
        """Nothing answers the SYN.  The clock starts when the program's
        SYN_SENT socket is seen (the kernel counts from its first SYN), not
        when it was started: a program's start-up, slow on a loaded
        machine, is no part of the time to notice."""
        self.blackhole()
        self.start(self.connect_cmd(), under_test=True)
        self.wait_until("%s sending its SYN" % self.program, lambda: self.held("SYN_SENT")
                        or self.subject.poll() is not None)
        return self.measure(self.exited, time.monotonic())

    def reboot(self):
        """The peer's kernel forgets the connection and comes back."""
        self.start(self.server_cmd(), under_test=True)
        self.listening()
        peer = self.peer()
        self.holds()
        t0 = self.tell(peer, "byte")
        self.blackhole()
        sh("ss", "-K", "dport", "=", ":%d" % PORT)  # its RST is dropped
        self.blackhole(False)
        return self.measure(self.exited, t0)

    def closewait(self):
        """The peer closed (we are in CLOSE-WAIT), then vanished; the
        program never closes its side."""
        self.start(self.server_cmd(reading=False), under_test=True)
        self.listening()
        # The peer closes once the program holds the connection; the clock
        # starts at its FIN, and the peer vanishes once the program's own
        # socket is in CLOSE-WAIT.  (It used to close at once and wait for
        # any CLOSE-WAIT socket: when the FIN came before the program's
        # accept(), that socket was still in the listen queue, no program's,
        # and the run said "noticed after 0.00 s" on a program that held no
        # socket.)
        peer = self.peer()
        self.holds()
        t0 = self.tell(peer, "close")
        self.holds("CLOSE_WAIT")
        self.blackhole()
        return self.measure(self.left_close_wait, t0)

    def go(self):
        sh("ip", "link", "set", "lo", "up")
        try:
            measured = getattr(self, self.scenario)()
            error = None
        except NotReady as e:
            measured, error = None, "the scene did not get ready: %s" % e
        except Exception as e:  # a broken set-up is a result, not a crash
            measured, error = None, str(e)
        finally:
            self.stop()
        return {"scenario": self.scenario, "program": self.program, "kashim": self.kashim,
                "stall": self.stall,
                "bound": bound_for(self.scenario), "idle": IDLE, "cap": self.cap,
                "measured": None if measured is None else round(measured, 2),
                "how": self.how, "error": error}


def bound_for(scenario):
    """The promise: all probes unanswered (idle, closewait), the user
    timeout (inflight, connect), or the first probe (reboot)."""
    return IDLE if scenario == "reboot" else BOUND


def run_one(args):
    if os.environ.get("DEADPEER_NETNS") != "1":
        # Re-run in a network namespace of our own; it dies with us.
        os.execvpe("unshare", ["unshare", "-n", "--", sys.executable] + sys.argv,
                   dict(os.environ, DEADPEER_NETNS="1"))
    result = Run(args.scenario, args.program, not args.without, args.cap, args.cgroup,
                 args.stall).go()
    print(json.dumps(result), flush=True)


def spawn(scenario, program, kashim, cap):
    cmd = [sys.executable, os.path.abspath(__file__), "run", scenario, program,
           "--cap", str(cap)] + ([] if kashim else ["--without"])
    env = dict(os.environ)
    env.pop("DEADPEER_NETNS", None)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=cap + 60, env=env)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"scenario": scenario, "program": program, "kashim": kashim,
                "bound": bound_for(scenario),
                "idle": IDLE, "cap": cap, "measured": None, "how": "",
                "error": (r.stderr or r.stdout).strip()[-300:] or "no output"}


def report(args):
    runs = [(s, p, k) for s in SCENARIOS for p in PROGRAMS[s] for k in (True, False)]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda r: spawn(*r, args.cap), runs))
    if args.json:
        for r in results:
            print(json.dumps(r))
        return
    fmt = "| %-38s | %-7s | %5s | %8s | %5s | %-14s | %s |"
    print("kashim: idle %ds, interval %ds, count %d, user timeout auto (%d s); cap %ds"
          % (IDLE, INTERVAL, COUNT, BOUND, args.cap))
    print()
    print(fmt % ("scenario", "program", "bound", "measured", "ratio", "without kashim",
                 "how it ended (with kashim)"))
    print(fmt % ("-" * 38, "-" * 7, "-" * 5, "-" * 8, "-" * 5, "-" * 14, "-" * 26))
    by_key = {(r["scenario"], r["program"], r["kashim"]): r for r in results}
    for s, p, k in runs:
        if not k:
            continue
        w, wo = by_key[(s, p, True)], by_key[(s, p, False)]

        def show(r):
            if r["error"]:
                return "error"
            return "%.2f s" % r["measured"] if r["measured"] is not None else \
                "> %d s" % r["cap"]
        bound = "%d s" % w["bound"]
        ratio = "%.2f" % (w["measured"] / w["bound"]) if w["measured"] is not None else "-"
        how = w["error"] or w["how"]
        without = show(wo) + ("" if wo["measured"] is None else " " + wo["how"])
        print(fmt % (SCENARIOS[s], p, bound, show(w), ratio, without, how))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    one = sub.add_parser("run")
    one.add_argument("scenario", choices=list(SCENARIOS))
    one.add_argument("program")
    one.add_argument("--without", action="store_true", help="run without kashim")
    one.add_argument("--cap", type=float, default=CAP)
    one.add_argument("--cgroup", help="kashim's cgroup mode: run the program in this cgroup")
    one.add_argument("--stall", type=float, default=0.0,
                     help="stop the program for this many seconds once it listens")
    rep = sub.add_parser("report")
    rep.add_argument("--json", action="store_true")
    rep.add_argument("--jobs", type=int, default=6)
    rep.add_argument("--cap", type=float, default=CAP)
    args = ap.parse_args()
    if args.cmd == "run":
        run_one(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
