# SPDX-License-Identifier: MIT
"""Hand a TCP socket to a program the way a supervisor does, then exec it.

  launch.py MODE PORT PROGRAM [ARGS...]

The launcher itself runs without kashim, so the socket it makes has
keepalive off.  PROGRAM runs with LD_PRELOAD set to $LAUNCH_PRELOAD, in
this same process (exec keeps the pid, as systemd and inetd do).
  listen-fds        listener on fd 3, LISTEN_FDS=1, LISTEN_PID=this pid
  listen-fds-other  the same, but LISTEN_PID names another process
  inherit           listener on fd 3, no LISTEN_FDS (a parent's listener)
  inetd             accept one connection and pass it as stdin and stdout"""
import os
import socket
import sys

mode, port, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(16)
env = dict(os.environ, LD_PRELOAD=os.environ["LAUNCH_PRELOAD"])
if mode == "inetd":
    listener.settimeout(30)
    conn, _ = listener.accept()
    os.dup2(conn.fileno(), 0)
    os.dup2(conn.fileno(), 1)
else:
    if listener.fileno() != 3:
        os.dup2(listener.fileno(), 3)
    os.set_inheritable(3, True)  # dup2 onto itself keeps close-on-exec
    if mode == "listen-fds":
        env.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
    elif mode == "listen-fds-other":
        env.update(LISTEN_FDS="1", LISTEN_PID="1")
os.execvpe(argv[0], argv, env)
