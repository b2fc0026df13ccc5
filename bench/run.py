#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make bench: what kashim costs, measured against the floor.

The floor is the program setting the same five options itself: no shim can
do less.  Variants run alternately in the same session, many rounds; the
table quotes medians of per-round ratios, so a machine that slows down for
a while slows every variant of that round alike.  Counts (system calls,
allocations) do not drift and are exact.

The cgroup column is kashim's cgroup mode: the same benchmark, no preload,
run in a cgroup of its own with `kashim attach` (root; BPF); its sock_ops
program runs in the kernel at each connect and accept."""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "libkashim.so")
BENCH = os.path.join(ROOT, "bench", "bench")
COUNT = os.path.join(ROOT, "bench", "countalloc.so")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
KASHIM = os.path.join(ROOT, "kashim")

VARIANTS = {  # name: (preload, mode)
    "none": ("", "none"),
    "floor": ("", "floor"),
    "kashim": (LIB, "none"),
}
CGROUP = None  # the cgroup of the "cgroup" variant, when it could be made


def cgroup_setup():
    """A cgroup of the benchmark's own with kashim attached, or None."""
    global CGROUP
    with open("/proc/self/mountinfo") as f:
        roots = [line.split(" - ")[0].split()[4] for line in f if " - cgroup2 " in line]
    if os.geteuid() != 0 or not roots:
        return None
    path = os.path.join(roots[0], "kashim-bench-%d" % os.getpid())
    try:
        os.mkdir(path)
    except OSError:
        return None
    r = subprocess.run([KASHIM, "attach", path], capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(path)
        print("(no cgroup column: %s)" % r.stderr.strip())
        return None
    CGROUP = path
    VARIANTS["cgroup"] = ("", "none")
    return path


def bpf_run_cost(n=10000):
    """The program's own time in the kernel per run, as the kernel times it
    with kernel.bpf_stats_enabled=1 (set for this run only)."""
    knob = "/proc/sys/kernel/bpf_stats_enabled"
    with open(knob) as f:
        old = f.read().strip()
    try:
        with open(knob, "w") as f:
            f.write("1")
        run_bench("connect", "cgroup", n)
        out = subprocess.run([KASHIM, "status"], capture_output=True, text=True).stdout
    finally:
        with open(knob, "w") as f:
            f.write(old)
    m = re.search(r"^%s .*ns_per_run=(\d+)" % re.escape(CGROUP), out, re.M)
    return int(m.group(1)) if m else None


def rule_list(kind, n):
    """n rules none of which matches a loopback connection, so every one is
    judged against them all and then covered.  "networks": 10.k.0.0/16, any
    port (the cgroup mode's trie looks them up at once; the library tries
    each address); "ports": :1 to :n, any address (in the cgroup mode all
    in one trie node whose ranges are scanned one by one: its worst case)."""
    if kind == "networks":
        return ",".join("10.%d.%d.0/24" % (k // 250, k % 250) for k in range(n))
    return ",".join(":%d" % (k + 1) for k in range(n))


# (label, --skip rules, --only rules): each set leaves loopback covered
RULE_SETS = [
    ("0 rules", None, None),
    ("16 SKIP networks", ("networks", 16), None),
    ("256 SKIP networks", ("networks", 256), None),
    ("16 SKIP ports", ("ports", 16), None),
    ("256 SKIP ports (the cgroup mode's worst case)", ("ports", 256), None),
    ("512: 256 SKIP ports + 256 ONLY (255 networks, then 127.0.0.0/8): the most", ("ports", 256),
     "only512"),
]


def rule_args(skip, only):
    args = ["--skip", rule_list(*skip)] if skip else []
    if only:
        args += ["--only", ",".join([rule_list("networks", 255), "127.0.0.0/8"])]
    return args


def bpf_rules_cost(n=10000):
    """The program's time per run with each rule set: a fresh attachment
    each (the kernel's run statistics are per program)."""
    out = {}
    for label, skip, only in RULE_SETS:
        subprocess.run([KASHIM, "detach", CGROUP], capture_output=True)
        r = subprocess.run([KASHIM, "attach"] + rule_args(skip, only) + [CGROUP],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("(%s: %s)" % (label, r.stderr.strip()))
        out[label] = bpf_run_cost(n) if r.returncode == 0 else None
    subprocess.run([KASHIM, "detach", CGROUP], capture_output=True)
    subprocess.run([KASHIM, "attach", CGROUP], capture_output=True)
    return out


def preload_rules_cost():
    """The library's user-space instructions per connection (connect +
    accept, both in the benchmark's process) with each rule set, counted
    by callgrind: exact, where a time on a shared machine is not."""
    if not shutil.which("valgrind"):
        return {}
    out = {}
    floor = instructions_per_op("connect", "floor")
    for label, skip, only in RULE_SETS:
        env = {}
        if skip:
            env["KASHIM_SKIP"] = rule_list(*skip)
        if only:
            env["KASHIM_ONLY"] = rule_args(None, only)[1]
        out[label] = instructions_per_op("connect", "kashim", env) - floor
    return out


def rules_tables():
    """make bench's rules part (python3 bench/run.py rules runs only it)."""
    bpf = bpf_rules_cost() if CGROUP else {}
    pre = preload_rules_cost()
    print()
    print("| rules (none matches a loopback connection) | cgroup mode: BPF time per run "
          "(kernel.bpf_stats_enabled) | per connection (connect + accept: 2 runs) "
          "| preload: user-space instructions per connection over the floor (callgrind) |")
    print("|---|---|---|---|")
    for label, _, _ in RULE_SETS:
        v = bpf.get(label)
        i = pre.get(label)
        print("| %s | %s | %s | %s |" % (label, ("%d ns" % v) if v else "-",
                                         ("%d ns" % (2 * v)) if v else "-",
                                         ("%+.0f" % i) if i is not None else "-"))


def cgroup_cleanup():
    VARIANTS.pop("cgroup", None)
    if CGROUP:
        subprocess.run([KASHIM, "detach", CGROUP], capture_output=True)
        os.rmdir(CGROUP)


def argv_for(variant, argv):
    """The cgroup variant moves itself into the cgroup, then execs."""
    if variant != "cgroup":
        return argv
    return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', CGROUP] + argv


def run_bench(what, variant, n, count_allocs=False):
    preload, mode = VARIANTS[variant]
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(p for p in (COUNT if count_allocs else "", preload) if p)
    out = subprocess.run(argv_for(variant, [BENCH, what, mode, str(n)]), env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def timing(what, n):
    """Per-operation times and the medians of per-round ratios."""
    times = {v: [] for v in VARIANTS}
    ratios = {"kashim/floor": [], "kashim/none": [], "floor/none": []}
    if "cgroup" in VARIANTS:
        ratios.update({"cgroup/floor": [], "cgroup/none": []})
    order = list(VARIANTS)
    for r in range(ROUNDS):
        rnd = {}
        k = r % len(order)
        for v in order[k:] + order[:k]:  # rotate who goes first
            rnd[v] = run_bench(what, v, n)[0]
            times[v].append(rnd[v])
        for key in ratios:
            a, b = key.split("/")
            ratios[key].append(rnd[a] / rnd[b])
    return ({v: statistics.median(t) for v, t in times.items()},
            {k: statistics.median(x) for k, x in ratios.items()})


def strace_counts(what, variant, n):
    preload, mode = VARIANTS[variant]
    env = dict(os.environ, LD_PRELOAD=preload)
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["strace", "-f", "-qq", "-c", "-o", out.name, "-e",
                        "trace=setsockopt,getsockopt"] + argv_for(variant, [BENCH, what, mode, str(n)]),
                       env=env, capture_output=True, check=True)
        text = out.read()
    counts = {}
    for name in ("setsockopt", "getsockopt"):
        m = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?%s$" % name, text, re.M)
        counts[name] = int(m.group(1)) if m else 0
    return counts


def instructions(what, variant, n, extra_env=None):
    """User-space instructions executed, counted by callgrind (the kernel's
    work is not included: the system calls are counted separately)."""
    preload, mode = VARIANTS[variant]
    env = dict(os.environ, LD_PRELOAD=preload, **(extra_env or {}))
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                        BENCH, what, mode, str(n)], env=env, capture_output=True, text=True)
    return int(re.search(r"Collected : (\d+)", r.stderr).group(1))


def instructions_per_op(what, variant, extra_env=None):
    return (instructions(what, variant, 2000, extra_env) -
            instructions(what, variant, 1000, extra_env)) / 1000


def syscalls(what, variant):
    """setsockopt and getsockopt calls per operation, counted by strace: the
    difference between 2000 and 1000 operations, so one-time work (load,
    the listener) drops out.  The benchmark's own SO_LINGER per connection
    is subtracted."""
    a, b = strace_counts(what, variant, 1000), strace_counts(what, variant, 2000)
    linger = 1 if what == "connect" else 0
    return ((b["setsockopt"] - a["setsockopt"]) / 1000 - linger,
            (b["getsockopt"] - a["getsockopt"]) / 1000)


def nginx_rps(tmp, port, kashim, seconds=4):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; error_log stderr crit;
pid %(t)s/nginx.pid; events { worker_connections 1024; }
http { access_log off; client_body_temp_path %(t)s/b; proxy_temp_path %(t)s/p;
  fastcgi_temp_path %(t)s/f; uwsgi_temp_path %(t)s/u; scgi_temp_path %(t)s/s;
  keepalive_timeout 0;
  server { listen 127.0.0.1:%(port)d; location / { return 200 "ok\\n"; } } }
""" % {"t": tmp, "port": port})
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if kashim:
        env["LD_PRELOAD"] = LIB
    # One core each for nginx and wrk: less scheduler noise between rounds.
    nginx = subprocess.Popen(["taskset", "-c", "1", "nginx", "-p", tmp, "-c", conf], env=env,
                             start_new_session=True)
    try:
        for _ in range(100):
            if subprocess.run(["ss", "-Htln", "sport = :%d" % port],
                              capture_output=True, text=True).stdout.strip():
                break
            time.sleep(0.05)
        out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", "-c32", "-d%ds" % seconds, "-H",
                              "Connection: close", "http://127.0.0.1:%d/" % port],
                             capture_output=True, text=True, timeout=seconds + 30).stdout
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    finally:
        os.killpg(nginx.pid, signal.SIGKILL)  # the master and its worker
        nginx.wait()
        for _ in range(100):  # the worker is gone once the port is free
            if not subprocess.run(["ss", "-Htln", "sport = :%d" % port],
                                  capture_output=True, text=True).stdout.strip():
                break
            time.sleep(0.05)


def per_operation():
    cg = "cgroup" in VARIANTS
    print()
    print("| per operation | no keepalive | hand-set floor | kashim | kashim/floor | kashim/none |"
          + (" cgroup mode | cgroup/floor | cgroup/none |" if cg else ""))
    print("|---|---|---|---|---|---|" + ("---|---|---|" if cg else ""))
    for what, n, label in (("socket", 100000, "socket() + close()"),
                           ("connect", 10000, "connect + accept on loopback")):
        t, r = timing(what, n)
        line = "| %s | %.0f ns | %.0f ns | %.0f ns | %.3f | %.3f |" % (
            label, t["none"], t["floor"], t["kashim"], r["kashim/floor"], r["kashim/none"])
        if cg:
            line += " %.0f ns | %.3f | %.3f |" % (t["cgroup"], r["cgroup/floor"], r["cgroup/none"])
        print(line)
    print()
    print("| system calls per operation (strace -c: 2000 ops minus 1000) | hand-set floor | kashim |"
          + (" cgroup mode |" if cg else ""))
    print("|---|---|---|" + ("---|" if cg else ""))
    for what, label in (("socket", "socket(): setsockopt / getsockopt"),
                        ("connect", "connection (connect + accept): setsockopt / getsockopt")):
        cells = ["%g / %g" % syscalls(what, v) for v in ("floor", "kashim", "cgroup") if v in VARIANTS]
        print("| %s | %s |" % (label, " | ".join(cells)))
    if cg:
        ns = bpf_run_cost()
        print()
        print("| cgroup mode: the BPF program's time in the kernel (kernel.bpf_stats_enabled) | per run | per connection (connect + accept: 2 runs) |")
        print("|---|---|---|")
        print("| 10000 connections | %s | %s |" % (("%d ns" % ns, "%d ns" % (2 * ns)) if ns else ("-", "-")))
    rules_tables()


# Paths kashim leaves alone, but wraps (sendto/sendmsg for Fast Open) or
# looks at (connect/accept of a number marked not TCP: one getsockopt to
# confirm the mark still describes the socket there).
NON_TCP = (("udp-sendto", 30000, "UDP sendto()"),
           ("udp-sendmsg", 30000, "UDP sendmsg()"),
           ("udp-connect", 20000, "UDP socket() + connect() + close()"),
           ("unix-accept", 10000, "AF_UNIX socket() + connect() + accept() + close()"))
NON_TCP_VARIANTS = {"none": {}, "kashim": {"LD_PRELOAD": LIB},
                    "filters": {"LD_PRELOAD": LIB, "KASHIM_SKIP": "10.0.0.0/8"}}


def non_tcp_run(what, variant, n, tool=()):
    env = dict(os.environ, **NON_TCP_VARIANTS[variant])
    env.setdefault("LD_PRELOAD", "")
    return subprocess.run(list(tool) + [BENCH, what, "none", str(n)], env=env,
                          capture_output=True, text=True, check=True)


def non_tcp_counts(what, variant):
    """getsockopt calls and user-space instructions per operation: 2000
    operations minus 1000, so one-time work drops out."""
    def count(n):
        with tempfile.NamedTemporaryFile("r") as out:
            non_tcp_run(what, variant, n, ["strace", "-f", "-qq", "-c", "-o", out.name,
                                            "-e", "trace=getsockopt"])
            m = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?getsockopt$",
                          out.read(), re.M)
        calls = int(m.group(1)) if m else 0
        insns = None
        if shutil.which("valgrind"):
            r = non_tcp_run(what, variant, n, ["valgrind", "--tool=callgrind",
                                               "--callgrind-out-file=/dev/null"])
            insns = int(re.search(r"Collected : (\d+)", r.stderr).group(1))
        return calls, insns
    (c1, i1), (c2, i2) = count(1000), count(2000)
    return (c2 - c1) / 1000, None if i1 is None else (i2 - i1) / 1000


def non_tcp_paths():
    print()
    print("| paths kashim leaves alone, per operation | no kashim | kashim | kashim/none "
          "| with KASHIM_SKIP | skip/none | getsockopt (kashim) | user-space instructions "
          "(none / kashim) |")
    print("|---|---|---|---|---|---|---|---|")
    for what, n, label in NON_TCP:
        times = {v: [] for v in NON_TCP_VARIANTS}
        ratios = {"kashim": [], "filters": []}
        order = list(NON_TCP_VARIANTS)
        for r in range(ROUNDS):
            k = r % len(order)
            rnd = {v: float(non_tcp_run(what, v, n).stdout.split()[0])
                   for v in order[k:] + order[:k]}
            for v in rnd:
                times[v].append(rnd[v])
            for v in ratios:
                ratios[v].append(rnd[v] / rnd["none"])
        calls, insns_k = non_tcp_counts(what, "kashim")
        _, insns_n = non_tcp_counts(what, "none")
        med = {v: statistics.median(t) for v, t in times.items()}
        print("| %s | %.0f ns | %.0f ns | %.3f | %.0f ns | %.3f | %g | %s |" % (
            label, med["none"], med["kashim"], statistics.median(ratios["kashim"]),
            med["filters"], statistics.median(ratios["filters"]), calls,
            "-" if insns_k is None else "%.0f / %.0f" % (insns_n, insns_k)))


def main():
    for tool in ("strace",):
        if not shutil.which(tool):
            sys.exit("bench: %s is needed" % tool)
    if sys.argv[1:] == ["non-tcp"]:
        print("kashim benchmark: paths kashim leaves alone; %d alternating rounds, medians" % ROUNDS)
        non_tcp_paths()
        return
    if sys.argv[1:] == ["rules"]:
        print("kashim benchmark: rules (kashim attach --skip/--only, KASHIM_SKIP/KASHIM_ONLY)")
        cgroup_setup()
        try:
            rules_tables()
        finally:
            cgroup_cleanup()
        return
    print("kashim benchmark: %d alternating rounds per figure; medians" % ROUNDS)
    cgroup_setup()
    try:
        per_operation()
    finally:
        cgroup_cleanup()
    non_tcp_paths()
    if shutil.which("valgrind"):
        print()
        print("| user-space instructions per operation (callgrind: 2000 ops minus 1000) | no keepalive | hand-set floor | kashim | kashim - floor |")
        print("|---|---|---|---|---|")
        for what, label in (("socket", "socket() + close()"),
                            ("connect", "connect + accept on loopback")):
            i = {v: instructions_per_op(what, v) for v in VARIANTS}
            print("| %s | %.0f | %.0f | %.0f | %+.0f |" % (label, i["none"], i["floor"],
                                                        i["kashim"], i["kashim"] - i["floor"]))
    print()
    _, none_allocs = run_bench("connect", "none", 2000, count_allocs=True)
    _, kashim_allocs = run_bench("connect", "kashim", 2000, count_allocs=True)
    rss_none = statistics.median(run_bench("rss", "none", 1000)[0] for _ in range(5))
    rss_kashim = statistics.median(run_bench("rss", "kashim", 1000)[0] for _ in range(5))
    print("| memory | without kashim | with kashim |")
    print("|---|---|---|")
    print("| heap allocations during 2000 connections (after load) | %d | %d |"
          % (none_allocs, kashim_allocs))
    print("| resident size after 1000 sockets | %d kB | %d kB (%+d kB) |"
          % (rss_none, rss_kashim, rss_kashim - rss_none))
    if shutil.which("nginx") and shutil.which("wrk"):
        tmp = tempfile.mkdtemp(prefix="kashim-bench.")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        rounds = int(os.environ.get("BENCH_NGINX_ROUNDS", "9"))
        with_k, without, ratios = [], [], []
        try:
            for r in range(rounds):
                pair = [True, False] if r % 2 else [False, True]
                got = {k: nginx_rps(tmp, port, k) for k in pair}
                with_k.append(got[True])
                without.append(got[False])
                ratios.append(got[True] / got[False])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print()
        print("| nginx (1 worker, core 1), `Connection: close`, wrk -t1 -c32 (core 0), %d x 4 s each | without kashim | with kashim | ratio |" % rounds)
        print("|---|---|---|---|")
        print("| requests/s (median) | %.0f | %.0f | %.3f |" % (
            statistics.median(without), statistics.median(with_k), statistics.median(ratios)))
    else:
        print("\n(nginx or wrk missing: no server figure)")


if __name__ == "__main__":
    main()
