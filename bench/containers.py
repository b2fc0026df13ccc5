#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make bench, containers (issue 28, 5): what kashim costs a container.

1. Start: the time from `docker run` to the program's first accepted
   connection, with kashim-entrypoint (the image's ENTRYPOINT, which
   preloads libkashim.so) and without it (--entrypoint python3): the same
   image, the same server (python3, listening on port 8080 of the host
   network), run alternately, ROUNDS rounds; medians and the median of the
   per-round ratios.  A client here connects every millisecond until the
   server answers its first accept() with a byte.  Docker's own start
   (and this shared machine's load) dominates that figure, so the same is
   then timed inside one running container, docker left out:
   BENCH_CONTAINER_INSIDE alternating rounds (41) of the server started
   by a driver with kashim-entrypoint, with LD_PRELOAD alone, and without
   kashim.
2. Size: what kashim adds to an image, in bytes: the Debian package
   installed as scripts/k8s/Containerfile does (its layers: the .deb
   copied, then dpkg -i), and the two files an image needs copied alone
   (the library and kashim-entrypoint, as a multi-stage COPY --from=
   would), against local/bookworm.

Docker is tests/helpers/engines.sh's private dockerd, run in this
benchmark's own network namespace (the host network of its containers),
with local/bookworm imported from the debootstrap root the tests share.
Needs root.  BENCH_CONTAINER_ROUNDS: rounds (9)."""
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("BENCH_CONTAINER_ROUNDS", "9"))
PORT = 8080
DOCKER = "/usr/bin/docker"  # Debian's CLI, the daemon's version
ENV = dict(os.environ)

# engines.sh's dockerd, in this process's namespaces ("here"); it prints
# where its socket is, then runs until its stdin closes (EXIT trap: the
# containers, the daemon and its directory go).
UP = r"""
. "$1/tests/helpers/engines.sh"
engine_docker_up here || { echo "error $ENGINE_WHY"; exit 1; }
echo "up $ENGINE_DOCKER_DIR"
read -r _
"""

SERVER = r"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d))
s.listen(8)
c, _ = s.accept()
c.send(b"x")
c.recv(1)
""" % PORT


# Inside one running container: the same server started by a driver,
# with and without kashim-entrypoint, alternately; the time from the start
# to its first answer, without docker's own start in it.
DRIVER = r"""
import json, os, socket, subprocess, sys, time
SERVER, ROUNDS = sys.argv[1], int(sys.argv[2])
def once(cmd, env=None):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", %d), timeout=5) as c:
                if c.recv(1) == b"x":
                    break
        except OSError:
            time.sleep(0.0005)
    t = time.monotonic() - t0
    p.wait()
    return t
py = ["/usr/bin/python3", "-c", SERVER]
preload = dict(os.environ, LD_PRELOAD=sys.argv[3])
res = {"with": [], "without": [], "preload": []}
for _ in range(ROUNDS + 1):
    res["without"].append(once(py))
    res["with"].append(once(["/usr/bin/kashim-entrypoint"] + py))
    res["preload"].append(once(py, preload))
print(json.dumps({k: v[1:] for k, v in res.items()}))
""" % PORT
INSIDE_ROUNDS = int(os.environ.get("BENCH_CONTAINER_INSIDE", "41"))


def docker(*args, check=True, **kw):
    r = subprocess.run([DOCKER, *args], env=ENV, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        sys.exit("docker %s: %s" % (" ".join(args[:2]), r.stderr.strip()))
    return r.stdout


def first_answer(limit=60.0):
    """Connect to the server until it accepts and sends its byte."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=5) as c:
                if c.recv(1) == b"x":
                    return time.monotonic()
        except OSError:
            time.sleep(0.001)
    sys.exit("the server in the container did not answer within %d s" % limit)


def start_time(image, entrypoint):
    args = ["run", "-d", "--network", "host"]
    if not entrypoint:
        args += ["--entrypoint", "/usr/bin/python3"]
        cmd = ["-c", SERVER]
    else:
        cmd = ["/usr/bin/python3", "-c", SERVER]
    t0 = time.monotonic()
    p = subprocess.Popen([DOCKER, *args, image, *cmd], env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    t1 = first_answer()
    out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        sys.exit("docker run: %s" % err.strip())
    docker("rm", "-f", out.strip())
    return t1 - t0


def build(ctx, tag, dockerfile):
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(dockerfile)
    docker("build", "-q", "-t", tag, ctx)


def size(image):
    return int(docker("image", "inspect", "-f", "{{.Size}}", image))


def layers(image, base_layers):
    """(size, created by) of each layer above the base's, oldest first."""
    out = docker("history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", image)
    rows = [line.split("\t", 1) for line in out.splitlines()][::-1]
    return [(int(s), c) for s, c in rows[base_layers:]]


def step(created_by):
    """A layer's Dockerfile line, shortly: COPY with its destination."""
    c = re.sub(r"^/bin/sh -c (#\(nop\) *)?", "", created_by.strip())
    c = re.sub(r"^COPY (file|dir):[0-9a-f]+ in ", "COPY to ", c)
    return c.replace("|", "/")[:70]


def package():
    out = subprocess.run(["make", "-s", "-C", ROOT, "deb"], capture_output=True, text=True)
    deb = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not os.path.isfile(deb):
        sys.exit("make deb: %s" % out.stderr.strip()[-400:])
    return deb


def images(tmp):
    deb = package()
    ctx = os.path.join(tmp, "pkg")
    os.mkdir(ctx)
    shutil.copy(deb, ctx)
    containerfile = open(os.path.join(ROOT, "scripts", "k8s", "Containerfile")).read()
    build(ctx, "kashim/pkg", containerfile.replace("FROM $BASE", "FROM local/bookworm")
          + 'ENTRYPOINT ["/usr/bin/kashim-entrypoint"]\n')
    # the two files alone, as the package installs them (read from it)
    ctx = os.path.join(tmp, "files")
    os.mkdir(ctx)
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
    paths = [line.split()[-1].lstrip(".") for line in listing.splitlines()]
    files = {}
    for name in ("libkashim.so", "kashim-entrypoint"):
        found = [p for p in paths if p.endswith("/" + name)]
        if not found:
            sys.exit("%s is not in %s" % (name, deb))
        files[name] = found[0]
    subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "x")], check=True)
    for name, p in files.items():
        shutil.copy(os.path.join(tmp, "x") + p, ctx)
    build(ctx, "kashim/files", "FROM local/bookworm\n"
          + "".join("COPY %s %s\n" % (n, p) for n, p in files.items()))
    installed = sum(int(line.split()[2]) for line in listing.splitlines())
    return deb, files, {n: os.path.getsize(os.path.join(ctx, n)) for n in files}, installed


def inner():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    up = subprocess.Popen(["bash", "-c", UP, "up", ROOT], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    line = up.stdout.readline().split(" ", 1)
    if line[0] != "up":
        sys.exit("dockerd: %s" % (line[1] if len(line) > 1 else "did not start"))
    ready = time.monotonic() - t0
    d = line[1].strip()
    ENV.update(DOCKER_HOST="unix://%s/docker.sock" % d, DOCKER_CONFIG=os.path.join(d, "cli"),
               HOME=os.path.join(d, "home"))
    tmp = tempfile.mkdtemp()
    try:
        report(tmp, ready)
    finally:
        shutil.rmtree(tmp)
        up.stdin.close()
        up.wait(timeout=120)


def report(tmp, ready):
    deb, files, sizes, installed = images(tmp)
    with_ep, without = [], []
    start_time("kashim/pkg", True)  # the first run of an image warms caches
    for _ in range(ROUNDS):
        with_ep.append(start_time("kashim/pkg", True))
        without.append(start_time("kashim/pkg", False))
    ratios = [w / o for w, o in zip(with_ep, without)]
    inside = json.loads(docker("run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/python3",
                               "kashim/pkg", "-c", DRIVER, SERVER, str(INSIDE_ROUNDS), files["libkashim.so"]))
    print("kashim in containers: dockerd %s (engines.sh, overlay2) up and local/bookworm imported in %.1f s; %d alternating rounds"
          % (docker("version", "-f", "{{.Server.Version}}").strip(), ready, ROUNDS))
    print()
    print("| docker run to the first accepted connection (python3 server, host network) | without kashim-entrypoint | with it | ratio |")
    print("|---|---|---|---|")
    print("| median | %.0f ms | %.0f ms | %.3f |" % (1000 * statistics.median(without),
                                                    1000 * statistics.median(with_ep), statistics.median(ratios)))
    print("| min - max | %.0f - %.0f ms | %.0f - %.0f ms | %.3f - %.3f |" % (
        1000 * min(without), 1000 * max(without), 1000 * min(with_ep), 1000 * max(with_ep), min(ratios), max(ratios)))
    print()
    print("| in one running container (--network none), %d alternating rounds: the server's start to its first accepted connection | median | ratio (median of rounds) | difference |" % INSIDE_ROUNDS)
    print("|---|---|---|---|")
    mo = statistics.median(inside["without"])
    print("| python3, no kashim | %.1f ms | | |" % (1000 * mo))
    for key, what in (("preload", "LD_PRELOAD=libkashim.so python3"), ("with", "kashim-entrypoint python3")):
        m = statistics.median(inside[key])
        r = statistics.median(w / o for w, o in zip(inside[key], inside["without"]))
        print("| %s | %.1f ms | %.3f | %+.1f ms |" % (what, 1000 * m, r, 1000 * (m - mo)))
    print()
    base = size("local/bookworm")
    base_layers = len(docker("history", "-q", "local/bookworm").split())
    print("| image size (docker image inspect) | bytes | added to local/bookworm |")
    print("|---|---|---|")
    print("| local/bookworm | %d | |" % base)
    for image, what in (("kashim/pkg", "the package (scripts/k8s/Containerfile)"),
                        ("kashim/files", "the library and kashim-entrypoint alone (COPY)")):
        s = size(image)
        print("| %s | %d | +%d |" % (what, s, s - base))
        for n, c in layers(image, base_layers):
            if n:
                print("| - its layer `%s` | | +%d |" % (step(c), n))
    print()
    print("| file | bytes |")
    print("|---|---|")
    print("| %s | %d |" % (os.path.basename(deb), os.path.getsize(deb)))
    print("| the files it installs, in all (dpkg-deb -c) | %d |" % installed)
    for n, p in files.items():
        print("| %s | %d |" % (p, sizes[n]))


def main():
    if os.geteuid() != 0:
        print("kashim in containers: skipped (needs root: dockerd in a namespace of its own)")
        return
    if not shutil.which("dockerd") or not os.access(DOCKER, os.X_OK):
        print("kashim in containers: skipped (no dockerd or %s: apt-get install docker.io)" % DOCKER)
        return
    if os.environ.get("KASHIM_BENCH_NETNS") != "1":
        # the containers' host network is a namespace of the benchmark's own
        ENV["KASHIM_BENCH_NETNS"] = "1"
        sys.exit(subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__)], env=ENV).returncode)
    inner()


if __name__ == "__main__":
    main()
