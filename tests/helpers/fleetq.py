#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# What tests/t_fleet.sh reads, as plain lines:
#   fleetq.py query URL EXPR       Prometheus' answer to EXPR now, one line a
#                                  series: "instance unit value" (labels
#                                  missing print as -); status 1 when the
#                                  query itself fails
#   fleetq.py hook FILE STATUS     the alerts of the webhook receiver's
#                                  notifications with that status
#                                  (firing, resolved): "alertname instance unit"
#   fleetq.py snap ROOT UPPER [BEFORE]
#                                  a host's files as its root (ROOT, e.g.
#                                  /proc/PID/root) shows them, for every path
#                                  its overlay's upper layer (UPPER) holds and
#                                  every path of BEFORE (an earlier snap):
#                                  "path kind mode owner digest", sorted.
#                                  What the running system itself rewrites
#                                  (logs, apt's and dpkg's state, systemd's
#                                  timestamps, temporary files) is left out.
import hashlib
import json
import os
import stat
import sys
import urllib.parse
import urllib.request

VOLATILE = ("var/log/", "var/cache/apt/", "var/lib/apt/", "var/lib/dpkg/", "var/cache/debconf/",
            "var/cache/ldconfig/", "var/lib/systemd/", "tmp/", "var/tmp/", "run/")


def query(url, expr):
    data = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen(url + "/api/v1/query", data, timeout=10) as r:
            answer = json.load(r)
    except OSError as e:
        print(f"query failed: {e}", file=sys.stderr)
        return 1
    if answer.get("status") != "success":
        print(f"query failed: {answer}", file=sys.stderr)
        return 1
    for s in answer["data"]["result"]:
        m = s["metric"]
        print(m.get("instance", "-"), m.get("unit", "-"), s["value"][1])
    return 0


def hook(path, status):
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return 0
    for line in lines:
        for a in json.loads(line).get("alerts", []):
            if a.get("status") == status:
                l = a.get("labels", {})
                print(l.get("alertname", "-"), l.get("instance", "-"), l.get("unit", "-"))
    return 0


def describe(root, rel):
    p = os.path.join(root, rel)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return f"{rel} absent"
    kind = "other"
    digest = "-"
    if stat.S_ISREG(st.st_mode):
        kind = "file"
        with open(p, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISLNK(st.st_mode):
        kind, digest = "link", os.readlink(p)
    return f"{rel} {kind} {stat.S_IMODE(st.st_mode):o} {st.st_uid}:{st.st_gid} {digest}"


def snap(root, upper, before=None):
    paths = set()
    for d, dirs, files in os.walk(upper):
        for n in dirs + files:
            paths.add(os.path.relpath(os.path.join(d, n), upper))
    if before:
        paths.update(line.split(" ", 1)[0] for line in open(before).read().splitlines())
    for rel in sorted(paths):
        if (rel + "/").startswith(VOLATILE):
            continue
        print(describe(root, rel))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "query":
        return query(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "hook":
        return hook(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "snap":
        return snap(argv[1], argv[2], argv[3] if len(argv) > 3 else None)
    print("usage: fleetq.py query URL EXPR | hook FILE STATUS | snap ROOT UPPER [BEFORE]", file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
