# SPDX-License-Identifier: MIT
"""A socket-activated server for tests/t_systemd.sh: it accepts on the
listening socket systemd passes as fd 3 (LISTEN_FDS=1, Accept=no) and keeps
every connection, never reading; with "held" it keeps the connection
systemd passes as fd 0 (Accept=yes).  Exits after 600 s at the latest."""
import os
import socket
import sys
import time

deadline = time.monotonic() + 600
if len(sys.argv) > 1 and sys.argv[1] == "held":
    conn = socket.socket(fileno=0)
    time.sleep(600)
    sys.exit(0)
if os.environ.get("LISTEN_FDS") != "1" or os.environ.get("LISTEN_PID") != str(os.getpid()):
    print("fdserve.py: no socket passed (LISTEN_FDS=1 for this pid)", file=sys.stderr)
    sys.exit(1)
listener = socket.socket(fileno=3)
listener.settimeout(1)
held = []
while time.monotonic() < deadline:
    try:
        conn, _ = listener.accept()
        held.append(conn)
    except TimeoutError:
        pass
