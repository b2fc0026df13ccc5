# SPDX-License-Identifier: MIT
"""Processes for tests/t_hostile_audit.sh; each writes DIR/ready when set up
and then holds its connections until killed (at most 600 s: a loaded
machine can take long over a test).

  hostile_audit.py dups DIR       one connection held on fds 0, 1, 2 and 7
                                  more duplicates, in two processes (a fork)
  hostile_audit.py mptcp DIR      an MPTCP listener and one MPTCP connection to
                                  it (DIR/ready: "FD PID" of the client);
                                  on DIR/go, blackholes lo (tc) and prints
                                  to DIR/noticed the seconds until the client
                                  notices, or "never" after 120 s
  hostile_audit.py server DIR PORT  accepts on a listener it got as fd 3
  hostile_audit.py hungfuse DIR MOUNTPOINT  mounts a FUSE file system on
                                  MOUNTPOINT (root, in its mount namespace)
                                  that never answers a request
  hostile_audit.py mainexit DIR [churn]  a listener and one connection to
                                  it, the client with its own keepalive
                                  (idle 30, interval 5, count 3), the
                                  accepted end without; then its main
                                  thread exits (pthread_exit) and another
                                  holds them; with churn, 300 more sockets
                                  (a longer read) and threads that each
                                  start the next and exit, one after another
"""
import ctypes
import os
import select
import socket
import subprocess
import sys
import threading
import time

IPPROTO_MPTCP = 262
HOLD = 600  # seconds a scene is held at most; the test kills it sooner


def ready(d, text=""):
    with open(d + "/ready.tmp", "w") as f:
        f.write(text)
    os.rename(d + "/ready.tmp", d + "/ready")


def wait_file(path, seconds):
    end = time.time() + seconds
    while time.time() < end and not os.path.exists(path):
        time.sleep(0.05)
    return os.path.exists(path)


def dups(d):
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    c = socket.create_connection(l.getsockname())
    a, _ = l.accept()
    l.close()
    a_keep = a  # the peer, in this process too
    fd = c.detach()
    for target in (0, 1, 2):
        os.dup2(fd, target)
    extra = [os.dup(fd) for _ in range(6)]
    child = os.fork()
    if child == 0:
        time.sleep(HOLD)
        os._exit(0)
    ready(d, "%d %d %d" % (os.getpid(), child, len(extra)))
    time.sleep(HOLD)
    del a_keep


def mptcp(d):
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    c.connect(l.getsockname())
    a, _ = l.accept()
    ready(d, "%d %d" % (c.fileno(), os.getpid()))
    if not wait_file(d + "/go", HOLD):
        return
    subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "blackhole"], check=True)
    t0 = time.monotonic()
    r, _, _ = select.select([c], [], [], 120)
    took = time.monotonic() - t0
    try:
        got = c.recv(1) if r else None
    except OSError as e:
        got = e
    with open(d + "/noticed", "w") as f:
        f.write("%.2f %r\n" % (took, got) if r else "never\n")
    del a


def server(d):
    l = socket.socket(fileno=3)
    ready(d)
    held = []
    end = time.time() + HOLD
    while time.time() < end:
        l.settimeout(max(0.1, end - time.time()))
        try:
            held.append(l.accept()[0])
        except socket.timeout:
            break


def hungfuse(d):
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    opts = "fd=%d,rootmode=40000,user_id=0,group_id=0" % fd
    if libc.mount(b"kashim-hung", sys.argv[3].encode(), b"fuse", 0, opts.encode()):
        sys.exit("mount fuse: %s" % os.strerror(ctypes.get_errno()))
    ready(d)
    time.sleep(HOLD)  # the INIT request is never read: every lookup waits


def mainexit(d):
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    c = socket.socket()
    for level, name, value in ((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
                               (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30),
                               (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5),
                               (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)):
        c.setsockopt(level, name, value)
    c.connect(l.getsockname())
    churn = sys.argv[3:] == ["churn"]
    held = (l, c, l.accept()[0], [socket.socket() for _ in range(300 if churn else 0)])
    end = time.time() + HOLD

    def hold():
        time.sleep(HOLD)
        os._exit(0)  # the whole process, held sockets and all

    def replace():
        if time.time() > end:
            os._exit(0)
        threading.Thread(target=replace).start()

    threading.Thread(target=replace if churn else hold).start()
    ready(d, "%d %d" % (os.getpid(), c.getsockname()[1]))
    # the main thread ends, the process lives on in the other one: what
    # pthread_exit() in a C program's main does (ctypes lets the GIL go)
    ctypes.CDLL(None).pthread_exit(None)
    del held


if __name__ == "__main__":
    {"dups": dups, "mptcp": mptcp, "server": server,
     "hungfuse": hungfuse, "mainexit": mainexit}[sys.argv[1]](sys.argv[2])
