# SPDX-License-Identifier: MIT
# Layer 4: real programs notice a vanished peer within the configured bound,
# and the same programs without kashim do not.  Every run is in a network
# namespace of its own (tests/deadpeer.py); needs root.
. "$(dirname "$0")/lib.sh"

# Tolerances, in seconds.  Late: process wake-up and exit, the 10 ms poll,
# and for data in flight one retransmission timeout (the kernel counts the
# user timeout from the first retransmission, >= 200 ms after the send).
LATE=0.5
# Early: the quiet client's last byte arrives up to 0.2 s before it vanishes
# ("idle").  "reboot" and "closewait" count from the peer's last packet (a
# byte, its FIN), as the kernel does, so the time the run takes to see its
# effect and drop the peer, long on a loaded machine, is no part of it.
EARLY=0.35

test_dead_peer_scenarios() {
	need_root || return
	need_cmd unshare tc ss socat nc nginx || return
	# The tag marks this test's runs (in their environment) for the check below.
	DEADPEER_TAG="t$$" "$PY" "$ROOT/tests/deadpeer.py" report --json > "$TMP/results" 2> "$TMP/err"
	if [ ! -s "$TMP/results" ]; then
		fail "deadpeer.py report gave nothing: $(tail -c 500 "$TMP/err")"
		return
	fi
	"$PY" - "$TMP/results" "$LATE" "$EARLY" <<'PYEOF'
import json, sys
late, early = float(sys.argv[2]), float(sys.argv[3])
# How each program must report the end, with kashim.
expected_python = {"idle": "TimeoutError", "inflight": "TimeoutError",
                   "connect": "TimeoutError", "reboot": "ConnectionResetError"}
for line in open(sys.argv[1]):
    r = json.loads(line)
    name = "%s/%s %s kashim" % (r["scenario"], r["program"], "with" if r["kashim"] else "without")
    m, bound = r["measured"], r["bound"]
    if r["error"]:
        print("not ok - t_deadpeer: %s: %s" % (name, r["error"] if r["error"].startswith(
            "the scene did not get ready") else "set-up failed: " + r["error"]))
    elif not r["kashim"]:
        if m is None:
            print("ok - t_deadpeer: %s: not noticed within %g s" % (name, r["cap"]))
        else:
            print("not ok - t_deadpeer: %s: noticed after %.2f s (%s): the contrast is lost"
                  % (name, m, r["how"]))
    elif m is None:
        print("not ok - t_deadpeer: %s: not noticed within %g s (bound %d s)"
              % (name, r["cap"], bound))
    elif not (bound - early <= m <= bound + late):
        print("not ok - t_deadpeer: %s: noticed after %.2f s, want %d s (-%g/+%g)"
              % (name, m, bound, early, late))
    elif r["program"] == "python3" and r["scenario"] in expected_python and \
            r["how"] != expected_python[r["scenario"]]:
        print("not ok - t_deadpeer: %s: ended by %s, want %s"
              % (name, r["how"], expected_python[r["scenario"]]))
    else:
        print("ok - t_deadpeer: %s: noticed after %.2f s, bound %d s (%s)"
              % (name, m, bound, r["how"]))
PYEOF
	# Nothing may outlive the runs: namespaces die with their processes.
	if grep -qsa "DEADPEER_TAG=t$$" /proc/[0-9]*/environ; then
		fail "a scenario run is still alive"
	else
		ok "no scenario process left behind"
	fi
	if tc qdisc show dev lo | grep -q blackhole; then
		fail "the host's loopback has a blackhole qdisc"
	else
		ok "the host's loopback is untouched"
	fi
}

# The peer closes and vanishes while the program is not scheduled (stopped
# for 1.5 s once it listens, as a loaded machine does at random): the FIN
# comes while the connection waits in the listen queue.  The run must wait
# for the program's own CLOSE-WAIT socket; it used to start the clock on the
# queued one, find no such socket in the program and say "noticed after
# 0.00 s" (seen once in a full run; 0.00 s every time with this stall).
test_closewait_program_slow_to_accept() {
	need_root || return
	need_cmd unshare tc socat || return
	local r
	r=$("$PY" "$ROOT/tests/deadpeer.py" run closewait socat --stall 1.5 2> "$TMP/err")
	"$PY" - "$r" "$LATE" "$EARLY" <<'PYEOF' && ok "noticed within the bound: $r" || fail "$r $(tail -c 300 "$TMP/err")"
import json, sys
r = json.loads(sys.argv[1])
late, early = float(sys.argv[2]), float(sys.argv[3])
assert not r["error"] and r["measured"] is not None, r
assert r["bound"] - early <= r["measured"] <= r["bound"] + late, r
PYEOF
}

run_tests
