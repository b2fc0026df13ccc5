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
#   fleetq.py snap ROOT UPPER      a host's files as its root (ROOT, e.g.
#                                  /proc/PID/root) shows them, for every path
#                                  its overlay's upper layer (UPPER) holds:
#                                  "path kind mode owner digest", sorted
#   fleetq.py compare ROOT UPPER BEFORE BASE
#                                  the paths whose state differs from BEFORE
#                                  (a snap), for every path of BEFORE and of
#                                  UPPER now; a path not in BEFORE was the
#                                  overlay's lower layer's (BASE) then.  The
#                                  last line: "N paths compared".
# What the running system itself rewrites (logs, apt's and dpkg's state,
# systemd's timestamps, temporary files) is left out.
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


def upper_paths(upper):
    paths = set()
    for d, dirs, files in os.walk(upper):
        for n in dirs + files:
            rel = os.path.relpath(os.path.join(d, n), upper)
            if not (rel + "/").startswith(VOLATILE):
                paths.add(rel)
    return paths


def snap(root, upper):
    for rel in sorted(upper_paths(upper)):
        print(describe(root, rel))
    return 0


def compare(root, upper, before_file, base):
    before = {}
    for line in open(before_file).read().splitlines():
        before[line.split(" ", 1)[0]] = line
    paths = sorted(upper_paths(upper) | set(before))
    for rel in paths:
        was = before.get(rel) or describe(base, rel)
        now = describe(root, rel)
        if was != now:
            print(f"{rel}: was '{was}', now '{now}'")
    print(f"{len(paths)} paths compared")
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "query":
        return query(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "hook":
        return hook(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "snap":
        return snap(argv[1], argv[2])
    if len(argv) == 5 and argv[0] == "compare":
        return compare(*argv[1:])
    print("usage: fleetq.py query URL EXPR | hook FILE STATUS | snap ROOT UPPER | compare ROOT UPPER BEFORE BASE",
          file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
