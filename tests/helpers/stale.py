# SPDX-License-Identifier: MIT
"""A TCP socket on a descriptor number that a UDP socket held before, the
number handed over by a route a preload does not see (issue 21).

  stale.py dup2 HOST PORT     a UDP socket, then the program's own TCP socket
                              dup2()ed onto its number; connects to HOST:PORT
                              and holds the connection
  stale.py reuse HOST PORT    the program's own TCP socket, closed, then a TCP
                              socket made with syscall() (ctypes) on its number;
                              connects to HOST:PORT and holds the connection
  stale.py send PATH HOST PORT   a listener on HOST:PORT, handed to whoever
                              connects to the AF_UNIX socket PATH (SCM_RIGHTS);
                              then waits
  stale.py receive PATH       closes a UDP socket, receives the listener from
                              PATH on the freed number, accepts and holds
                              connections

Each prints one line when ready; every mode exits after 600 s at the latest."""
import os
import socket
import sys
import time

deadline = time.monotonic() + 600
mode = sys.argv[1]


def say(text):
    print(text, flush=True)


def hold(conns):
    while time.monotonic() < deadline:
        time.sleep(1)


if mode == "dup2":
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket()
    number = udp.fileno()
    os.dup2(tcp.fileno(), number)
    tcp.close()
    udp.detach()
    conn = socket.socket(fileno=number)
    conn.connect((sys.argv[2], int(sys.argv[3])))
    say("connected on fd %d" % number)
    hold([conn])
elif mode == "reuse":
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    first = socket.socket()
    number = first.fileno()
    first.close()
    # socket(2) by number, past libc's socket() and so past kashim.
    sys_socket = {"x86_64": 41, "aarch64": 198, "riscv64": 198, "ppc64le": 326,
                  "s390x": 359, "i686": 359}[os.uname().machine]
    raw = libc.syscall(sys_socket, socket.AF_INET, socket.SOCK_STREAM, 0)
    conn = socket.socket(fileno=raw)
    conn.connect((sys.argv[2], int(sys.argv[3])))
    say("connected on fd %d (the closed socket's was %d)" % (raw, number))
    hold([conn])
elif mode == "send":
    path, host, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
    listener = socket.socket()
    listener.bind((host, port))
    listener.listen(16)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    unix.listen(1)
    say("ready")
    peer, _ = unix.accept()
    socket.send_fds(peer, [b"l"], [listener.fileno()])
    listener.close()
    hold([peer])
elif mode == "receive":
    unix = socket.socket(socket.AF_UNIX)
    unix.connect(sys.argv[2])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    number = udp.fileno()
    udp.close()
    _, fds, _, _ = socket.recv_fds(unix, 1, 1)
    listener = socket.socket(fileno=fds[0])
    say("listening on fd %d (the UDP socket's was %d)" % (fds[0], number))
    held = []
    listener.settimeout(1)
    while time.monotonic() < deadline:
        try:
            held.append(listener.accept()[0])
        except socket.timeout:
            pass
