# SPDX-License-Identifier: MIT
"""runcspec.py CONFIG ROOTFS CGROUP BINDS ARGS...: edits the config.json that
`runc spec` wrote for tests/t_runc.sh: the process runs ARGS with no
terminal, the bundle's root is ROOTFS, read-only bind mounts of the host's
/usr and /etc (the rootfs has /bin, /lib, /lib64, /sbin as links into usr,
as this host has), then BINDS (a comma-separated list of SOURCE:DEST,
read-only) in order; the container shares the host's network namespace (so
a client on the host reaches it on loopback) and lives in cgroup CGROUP.
Environment lines for the process come from KASHIM_* variables of this
script's environment."""
import json
import os
import sys

config, rootfs, cgroup, binds = sys.argv[1:5]
args = sys.argv[5:]
with open(config) as f:
    spec = json.load(f)
spec["root"] = {"path": rootfs, "readonly": True}
proc = spec["process"]
proc["terminal"] = False
proc["args"] = args
proc["env"] = ["PATH=/usr/local/bin:/usr/bin:/bin"] + [
    f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("KASHIM_")]
proc.pop("rlimits", None)  # no CAP_SYS_RESOURCE here to set them
mounts = spec["mounts"]
extra = [("/usr", "/usr"), ("/etc", "/etc")]
extra += [tuple(b.split(":", 1)) for b in binds.split(",") if b]
for src, dest in extra:
    mounts.append({"destination": dest, "type": "bind", "source": src,
                   "options": ["rbind", "ro"]})
linux = spec["linux"]
linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
linux["cgroupsPath"] = cgroup
linux.pop("resources", None)
with open(config, "w") as f:
    json.dump(spec, f, indent=1)
