"""Hold idle TCP connections open: the application side of the tests.

  hold.py server HOST PORT   accept connections and keep them, never reply
  hold.py client HOST PORT   connect and wait for the server to speak
  hold.py client-recv ...    the same, printing how the wait ended and when

Exits after 600 s at the latest."""
import socket
import sys
import time

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
deadline = time.monotonic() + 600

if mode == "server":
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)
    listener.settimeout(1)
    held = []
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
            held.append(conn)
        except socket.timeout:
            pass
else:
    conn = socket.create_connection((host, port), timeout=10)
    conn.settimeout(None)
    started = time.monotonic()
    try:
        data = conn.recv(1)
        print("closed" if not data else "data", flush=True)
    except OSError as e:
        print("error %s after %.1fs" % (e.__class__.__name__, time.monotonic() - started),
              flush=True)
