# SPDX-License-Identifier: MIT
"""TCP Fast Open on loopback, for tests/t_fastopen.sh (in a private network
namespace with net.ipv4.tcp_fastopen=3).

  fastopen.py server PORT        a listener on 127.0.0.1:PORT with TCP_FASTOPEN;
                                 accepts and holds its connections while the
                                 process that started it lives
  fastopen.py client PORT API N  N connections to 127.0.0.1:PORT opened with
                                 MSG_FASTOPEN through API (sendto, sendmsg,
                                 sendto-nb, sendmsg-nb: -nb on a non-blocking
                                 socket), never connect(); holds them

The client prints "connected N syn_data K": K of the N connections carried
their data in the SYN (the kernel's TCPI_OPT_SYN_DATA), so the test knows the
kernel really used Fast Open.  Every mode exits after 600 s at the latest."""
import os
import socket
import sys
import time

TCPI_OPT_SYN_DATA = 32
deadline = time.monotonic() + 600
mode, port = sys.argv[1], int(sys.argv[2])
addr = ("127.0.0.1", port)

if mode == "server":
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
    listener.bind(addr)
    listener.listen(16)
    listener.settimeout(0.2)
    held = []
    parent = os.getppid()
    while time.monotonic() < deadline and os.getppid() == parent:
        try:
            held.append(listener.accept()[0])
        except socket.timeout:
            pass
    sys.exit(0)


def established(conn):
    """Waits (bounded) until the handshake is done; the state is byte 0 of
    TCP_INFO (1: ESTABLISHED)."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == 1:
            return True
        time.sleep(0.05)
    return False


api, n = sys.argv[3], int(sys.argv[4])
held, syn_data = [], 0
for _ in range(n):
    conn = socket.socket()
    if api.endswith("-nb"):
        conn.setblocking(False)
    try:
        if api.startswith("sendto"):
            conn.sendto(b"x", socket.MSG_FASTOPEN, addr)
        else:
            conn.sendmsg([b"x"], [], socket.MSG_FASTOPEN, addr)
    except BlockingIOError:
        pass  # EINPROGRESS: no cookie yet, the data follows the handshake
    if not established(conn):
        print("not established within 60 s", flush=True)
        sys.exit(1)
    if conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[5] & TCPI_OPT_SYN_DATA:
        syn_data += 1
    held.append(conn)
print("connected %d syn_data %d" % (n, syn_data), flush=True)
while time.monotonic() < deadline:
    time.sleep(1)
