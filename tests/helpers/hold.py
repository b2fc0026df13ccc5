# SPDX-License-Identifier: MIT
"""The application side of the tests: small, plain socket programs.

  hold.py server HOST PORT       accept connections and keep them; never read
  hold.py server-recv HOST PORT  accept one connection and read until it ends
  hold.py client HOST PORT       connect and wait for the server to speak
                                 (HOLD_WAIT=N: try a refused connect again for N s)
  hold.py chatty HOST PORT       connect, send the start of an HTTP request,
                                 then one byte every 0.2 s
  hold.py client-send HOST PORT  connect; on a line on stdin send 64 KiB,
                                 then wait for a reply
  hold.py client-close HOST PORT connect, close at once, then exit
  hold.py connect HOST PORT      a blocking connect() with no timeout
  hold.py http-read HOST PORT PATH  GET PATH and read the body steadily
  hold.py clients - - HOST:PORT...  connect to each ([v6]:port for IPv6), hold

The reading modes print one line saying how the wait ended, e.g.
"error TimeoutError [Errno 110] Connection timed out".  Every mode exits
after 600 s at the latest."""
import os
import socket
import sys
import time

mode = sys.argv[1]
if mode == "clients":
    held = []
    for target in sys.argv[4:]:
        h, _, p = target.rpartition(":")
        h = h.strip("[]")
        fam = socket.AF_INET6 if ":" in h else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.connect((h, int(p)))
        held.append(s)
    print("connected", flush=True)
    time.sleep(600)
    sys.exit(0)
host, port = sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
deadline = time.monotonic() + 600


def say(text):
    print(text, flush=True)


def wait_for_end(conn):
    try:
        while time.monotonic() < deadline:
            if not conn.recv(65536):
                say("closed")
                return
    except OSError as e:
        say("error %s %s" % (e.__class__.__name__, e))


def connect():
    conn = socket.socket(family, socket.SOCK_STREAM)
    conn.connect((host, port))
    return conn


if mode in ("server", "server-recv"):
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)
    if mode == "server-recv":
        conn, _ = listener.accept()
        wait_for_end(conn)
        sys.exit(0)
    listener.settimeout(1)
    held = []
    while time.monotonic() < deadline:
        try:
            held.append(listener.accept()[0])
        except socket.timeout:
            pass
elif mode == "connect":
    try:
        conn = connect()
        say("connected")
    except OSError as e:
        say("error %s %s" % (e.__class__.__name__, e))
elif mode == "client-close":
    connect().close()
elif mode == "chatty":
    conn = connect()
    conn.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    try:
        while time.monotonic() < deadline:
            conn.sendall(b"a")
            time.sleep(0.2)
    except OSError as e:
        say("error %s %s" % (e.__class__.__name__, e))
elif mode == "client-send":
    conn = connect()
    sys.stdin.readline()
    conn.sendall(b"x" * 65536)
    wait_for_end(conn)
elif mode == "http-read":
    conn = connect()
    conn.sendall(b"GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % sys.argv[4].encode())
    wait_for_end(conn)
else:  # client
    # HOLD_WAIT=N: a server started beside it (a compose service, a
    # background job) may not listen yet: a refused connection or a name
    # not yet known is tried again, every 0.2 s, for up to N seconds.
    until = time.monotonic() + float(os.environ.get("HOLD_WAIT", "0"))
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=10)
            break
        except (ConnectionRefusedError, socket.gaierror):
            if time.monotonic() >= until:
                raise
            time.sleep(0.2)
    conn.settimeout(None)
    wait_for_end(conn)
