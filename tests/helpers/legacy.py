#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The fleet test's legacy service (tests/t_fleet.sh): a server and a client
# of it in one process, in the service's own network namespace
# (PrivateNetwork=yes), holding one idle connection with no keepalive of
# its own.  When the connection ends (a dead peer noticed by keepalive) it
# says so and stays up, so that its network namespace, and the kernel's
# counters in it, stay for the audit to read.
import socket
import sys
import time

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 7000))
server.listen(1)
client = socket.create_connection(("127.0.0.1", 7000))
peer, _ = server.accept()
print("holding an idle connection", flush=True)
try:
    data = client.recv(1)
    print("connection closed by the peer" if not data else "unexpected data", flush=True)
except OSError as e:
    print(f"connection lost: {e}", flush=True)
while True:
    time.sleep(3600)
