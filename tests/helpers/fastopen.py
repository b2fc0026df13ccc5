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

  fastopen.py refused PORT API HOW
                                 one send with MSG_FASTOPEN through API
                                 (sendto, sendmsg, sendmmsg: libc's, by
                                 ctypes) that the kernel refuses, on:
        accepted        a connection accepted on 127.0.0.1:PORT+1 (made by
                        this process), to 127.0.0.1:PORT: EISCONN
        accepted-efault the same, the address (sendto) or the msghdr
                        (sendmsg, sendmmsg) a pointer nothing is mapped at:
                        EFAULT
        connected       a connection made to 127.0.0.1:PORT, the send to
                        10.1.2.3:9: EISCONN
        disabled        a new socket, the send to 10.1.2.3:9 where Fast Open
                        is off for clients (net.ipv4.tcp_fastopen=2):
                        EOPNOTSUPP; then a connect() to 127.0.0.1:PORT
                                 prints "refused HOW API ERRNO" and holds
                                 its sockets

The client prints "connected N syn_data K": K of the N connections carried
their data in the SYN (the kernel's TCPI_OPT_SYN_DATA), so the test knows the
kernel really used Fast Open.  Every mode exits after 600 s at the latest."""
import ctypes
import errno
import os
import socket
import struct
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


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(Iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]


BAD = ctypes.c_void_p(1)  # never mapped


def fastopen_send(fd, api, host, dport, bad):
    """One send with MSG_FASTOPEN through libc's API (the preloaded one:
    ctypes looks the name up as the program's own calls are); its errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    name = ctypes.create_string_buffer(
        struct.pack("=HH4s8x", socket.AF_INET, socket.htons(dport), socket.inet_aton(host)))
    data = ctypes.create_string_buffer(b"x")
    iov = Iovec(ctypes.cast(data, ctypes.c_void_p), 1)
    msg = Msghdr(ctypes.cast(name, ctypes.c_void_p), 16, ctypes.pointer(iov), 1, None, 0, 0)
    flags = socket.MSG_FASTOPEN
    if api == "sendto":
        libc.sendto.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                ctypes.c_void_p, ctypes.c_uint32]
        rc = libc.sendto(fd, data, 1, flags, BAD if bad else name, 16)
    elif api == "sendmsg":
        libc.sendmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        rc = libc.sendmsg(fd, BAD if bad else ctypes.byref(msg), flags)
    else:
        mm = Mmsghdr(msg, 0)
        libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
        rc = libc.sendmmsg(fd, BAD if bad else ctypes.byref(mm), 1, flags)
    if rc >= 0:
        return "none"
    e = ctypes.get_errno()
    # 95 is both; python names it ENOTSUP, the kernel's source EOPNOTSUPP
    return "EOPNOTSUPP" if e == errno.EOPNOTSUPP else errno.errorcode.get(e, str(e))


if mode == "refused":
    api, how = sys.argv[3], sys.argv[4]
    held = []
    if how.startswith("accepted"):
        listener = socket.create_server(("127.0.0.1", port + 1))
        held += [listener, socket.create_connection(("127.0.0.1", port + 1))]
        conn = listener.accept()[0]
        got = fastopen_send(conn.fileno(), api, "127.0.0.1", port, how.endswith("efault"))
    elif how == "connected":
        conn = socket.create_connection(addr)
        got = fastopen_send(conn.fileno(), api, "10.1.2.3", 9, False)
    else:
        conn = socket.socket()
        got = fastopen_send(conn.fileno(), api, "10.1.2.3", 9, False)
        conn.connect(addr)
    held.append(conn)
    print("refused", how, api, got, flush=True)
    while time.monotonic() < deadline:
        time.sleep(1)
    sys.exit(0)

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
