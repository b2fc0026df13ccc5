#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# webhook.py PORT FILE: Alertmanager's webhook receiver for the fleet test
# (tests/t_fleet.sh), on 127.0.0.1:PORT.  Each notification's JSON body is
# appended to FILE as one line.
import http.server
import json
import sys

port, path = int(sys.argv[1]), sys.argv[2]


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(path, "a") as f:
            f.write(json.dumps(json.loads(body)) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Hook).serve_forever()
