# SPDX-License-Identifier: MIT
"""What the Python scene builders of the tests share (audit_blackhole.py,
audit_counters.py): a command that must work, and a bounded wait for a
state that says which scene did not get ready."""
import subprocess
import sys
import time


def sh(*cmd):
    subprocess.run(cmd, check=True)


def wait_for(what, cond, limit=60.0):
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            print("notready: %s not within %g s" % (what, limit), flush=True)
            sys.exit(1)
        time.sleep(0.1)
