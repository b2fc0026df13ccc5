#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kashim attach / detach / status: the cgroup-wide mode (a BPF sock_ops
# program).  Every test makes its own cgroup under the cgroup2 mount, moves
# only the processes it starts into it, and detaches and removes it at the
# end, pass or fail.  Options are read back from outside with sockpeek.
. "$(dirname "$0")/lib.sh"
. "$HELPERS/nspawn.sh" # test_systemd_service_cgroup boots a real systemd

KASHIM=${TEST_KASHIM:-$ROOT/kashim} # TEST_KASHIM: another build (an old one, to see a test fail)
HOLD=$ROOT/tests/tcphold
CG_ARGS=(--idle 37 --interval 11 --count 4)
OWN="keepalive=1 idle=100 interval=20 count=3 user_timeout=5000"
UNTOUCHED="keepalive=0 idle=7200 interval=75 count=9 user_timeout=0"

CG=""
CG_MORE=() # cgroups a test made beside $CG (at the mount's top)
cg_cleanup() {
	local p
	exec 2> /dev/null # no job notices for the processes killed here
	for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2> /dev/null; done
	wait 2> /dev/null
	for p in "${CG_MORE[@]}"; do
		"$KASHIM" detach -- "$p" > /dev/null 2>&1
		rmdir "$p" 2> /dev/null
	done
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		"$KASHIM" detach "$CG" > /dev/null 2>&1
		find "$CG" -depth -mindepth 1 -type d -exec rmdir {} + 2> /dev/null
		rmdir "$CG" 2> /dev/null
	fi
	cleanup
}

# need_cgroup: root, a cgroup2 mount and BPF; makes $CG (a fresh cgroup)
# and arranges for it to go away.
need_cgroup() {
	need_root || return 1
	local root
	root=$(cgroup2_root)
	if [ -z "$root" ]; then
		skip "no cgroup2 mount in /proc/self/mountinfo"
		return 1
	fi
	CG=$root/kashim-test-$$-$RANDOM
	trap cg_cleanup EXIT
	if ! mkdir "$CG" 2> "$TMP/mkdir.err"; then
		skip "cannot create a cgroup under $root: $(cat "$TMP/mkdir.err")"
		CG=""
		return 1
	fi
}

# attach ARGS...: kashim attach ARGS $CG, which must succeed.
attach() {
	if "$KASHIM" attach "$@" "$CG" 2> "$TMP/attach.err"; then
		return 0
	fi
	if grep -q "cannot load a BPF sock_ops program" "$TMP/attach.err"; then
		skip "no BPF here: $(cat "$TMP/attach.err")"
	else
		fail "kashim attach $* failed: $(cat "$TMP/attach.err")"
	fi
	return 1
}

# client_in DIR [own|ownka]: a static server outside the cgroups, and a
# static client in DIR connected to it; the client's pid in $BG.
client_in() {
	local port
	port=$(free_port)
	bg "$HOLD" serve "$port"
	wait_listen "$port" || { fail "the server does not listen"; return 1; }
	bg incg "$1" "$HOLD" connect "$port" ${2:+"$2"}
}

# A static client and server, both in the cgroup: each end gets the options.
test_static_client_and_server() {
	need_cgroup && attach "${CG_ARGS[@]}" || return
	local port server client
	port=$(free_port)
	bg incg "$CG" "$HOLD" serve "$port"
	server=$BG
	wait_listen "$port" || { fail "the static server does not listen"; return; }
	bg incg "$CG" "$HOLD" connect "$port"
	client=$BG
	expect_socket "$client" "ESTABLISHED" "$WANT" "static client (connect)"
	expect_socket "$server" "ESTABLISHED" "$WANT" "static server (accept)"
	expect_socket "$server" "LISTEN" "keepalive=0" "the listening socket is left alone"
	if file -L "$HOLD" | grep -q "statically linked"; then ok "tcphold is static"; else fail "tcphold is not static"; fi
}

# python3 in the cgroup connects to a python3 server outside it: the client
# gets the options, the process outside the cgroup is untouched.
test_python_inside_server_outside() {
	need_cgroup && attach "${CG_ARGS[@]}" || return
	local port server client
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	server=$BG
	wait_listen "$port" || { fail "the python server does not listen: $(cat "$TMP/bg.$server.log")"; return; }
	bg incg "$CG" "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	client=$BG
	expect_socket "$client" "ESTABLISHED" "$WANT" "python3 in the cgroup"
	expect_socket "$server" "ESTABLISHED" "$UNTOUCHED" "python3 outside the cgroup is untouched"
}

# A nested cgroup below $CG is covered too.
test_below() {
	need_cgroup && attach "${CG_ARGS[@]}" || return
	mkdir "$CG/below" || { fail "cannot create $CG/below"; return; }
	client_in "$CG/below" || return
	expect_socket "$BG" "ESTABLISHED" "$WANT" "a process in a cgroup below"
}

# respect keeps a program's own keepalive and user timeout; force does not.
# Where the kernel's bpf_getsockopt cannot read a socket's keepalive (attach
# asks it with a probe: 5.10 and 5.15, docs/kernels.md), respect acts as
# force, attach says so in one line and status counts it.
test_respect_and_force() {
	need_cgroup && attach "${CG_ARGS[@]}" || return
	if [ -s "$TMP/attach.err" ]; then
		respect_as_force
		return
	fi
	ok "attach announces nothing: this kernel can read a socket's own keepalive"
	client_in "$CG" own || return
	expect_socket "$BG" "ESTABLISHED" "$OWN" "respect (default): the program's own settings stay"
	client_in "$CG" ownka || return
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=100 interval=20 count=3 user_timeout=0" \
		"respect: own timers, no user timeout: kashim's automatic one (from its timers) is not set"
	attach --user-timeout 30s "${CG_ARGS[@]}" || return
	client_in "$CG" ownka || return
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=100 interval=20 count=3 user_timeout=30000" \
		"respect: own timers, no user timeout: an operator's fixed one is set"
	attach --mode force "${CG_ARGS[@]}" || return
	client_in "$CG" own || return
	expect_socket "$BG" "ESTABLISHED" "$WANT" "force: kashim's values stand"
}

respect_as_force() {
	local release
	release=$(uname -r | sed 's/[.+]/\\&/g')
	if [ "$(wc -l < "$TMP/attach.err")" = 1 ] && grep -qE "^kashim attach: this kernel \($release\) cannot read a socket's own keepalive from BPF \(bpf_getsockopt refused it\): --mode respect acts as force here$" "$TMP/attach.err"; then
		ok "one line says respect acts as force on this kernel: $(cat "$TMP/attach.err")"
	else
		fail "attach wrote: $(cat "$TMP/attach.err")"
	fi
	client_in "$CG" own || return
	expect_socket "$BG" "ESTABLISHED" "$WANT" "respect acting as force: kashim's values over the program's own"
	"$KASHIM" status > "$TMP/status" 2>&1
	expect_text "$TMP/status" "status counts it" "^  respect acted as force on 1 connections: this kernel's bpf_getsockopt cannot read a socket's keepalive$"
	attach --mode force "${CG_ARGS[@]}" || return
	if [ -s "$TMP/attach.err" ]; then fail "force mode announced: $(cat "$TMP/attach.err")"; else ok "force mode announces nothing"; fi
	client_in "$CG" own || return
	expect_socket "$BG" "ESTABLISHED" "$WANT" "force: kashim's values stand"
}

# Attaching again replaces the settings; status lists them; detach stops
# new connections from getting them and status no longer lists the cgroup.
test_replace_status_detach() {
	need_cgroup && attach "${CG_ARGS[@]}" || return
	local line
	attach --idle 50 --interval 5 --count 2 --user-timeout off || return
	client_in "$CG" || return
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=50 interval=5 count=2 user_timeout=0" \
		"attach again replaces the settings"
	expect_status 0 "status" "$KASHIM" status
	line=$(grep -F "$CG " "$TMP/out")
	if [ "$(grep -cF "$CG " "$TMP/out")" = 1 ] &&
		[[ $line == "$CG idle=50s interval=5s count=2 user_timeout=off mode=respect connections=1 refused=0" ]]; then
		ok "status: one line with the new settings and the count: $line"
	else
		fail "status: $(cat "$TMP/out")"
	fi
	expect_status 0 "detach" "$KASHIM" detach "$CG"
	client_in "$CG" || return
	expect_socket "$BG" "ESTABLISHED" "$UNTOUCHED" "after detach, a new connection is untouched"
	"$KASHIM" status > "$TMP/out" 2>&1
	if grep -qF "$CG" "$TMP/out"; then fail "status still lists $CG"; else ok "status no longer lists $CG"; fi
	expect_status 1 "detach again" "$KASHIM" detach "$CG"
	expect_text "$TMP/err" "detach again says why" "^kashim detach: kashim is not attached to $CG\$"
}

# --config FILE: the library's configuration file, read by its own loader;
# options on the command line win over it; a bad line attaches nothing.
test_config_file() {
	need_cgroup || return
	printf '# kashim.conf\nidle = 41s\ninterval = 7\ncount = 3\nuser_timeout = 9s\nmode = force\n' \
		> "$TMP/kashim.conf"
	attach --config "$TMP/kashim.conf" --count 5 || return
	client_in "$CG" own || return
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=41 interval=7 count=5 user_timeout=9000" \
		"the file's settings (force mode too), --count over the file's count"
	"$KASHIM" status > "$TMP/status" 2>&1
	expect_text "$TMP/status" "status shows the file's settings" \
		"^$CG idle=41s interval=7s count=5 user_timeout=9000ms mode=force "
	printf 'idle = 41s\ncount = 200\n' > "$TMP/bad.conf"
	expect_status 2 "a bad line in the file" "$KASHIM" attach --config "$TMP/bad.conf" "$CG"
	expect_text "$TMP/err" "the library's message, with file and line" \
		"^kashim attach: kashim: $TMP/bad.conf:2: count=\"200\" ignored \(out of range\)"
	expect_text "$TMP/err" "and nothing attached" "^kashim attach: nothing attached"
	expect_status 2 "a missing file" "$KASHIM" attach --config "$TMP/none.conf" "$CG"
	expect_text "$TMP/err" "names the file" "cannot read the configuration file \"$TMP/none.conf\": no such file"
	"$KASHIM" status > "$TMP/status" 2>&1
	expect_text "$TMP/status" "the settings in force are unchanged" "^$CG idle=41s interval=7s count=5 "
}

# Refusals: one line, a non-zero status, nothing attached.
test_refusals() {
	need_cgroup || return
	expect_status 2 "a bad value" "$KASHIM" attach --idle 0 "$CG"
	expect_text "$TMP/err" "the library's message for the value" "^kashim attach: kashim: KASHIM_IDLE"
	expect_status 2 "a bad mode" "$KASHIM" attach --mode maybe "$CG"
	expect_text "$TMP/err" "the library's message for the mode" "KASHIM_MODE.*respect or force"
	expect_status 2 "an unknown option" "$KASHIM" attach --idel 5 "$CG"
	expect_status 2 "no cgroup" "$KASHIM" attach --idle 5
	expect_status 1 "a directory that is not a cgroup" "$KASHIM" attach "$TMP"
	expect_text "$TMP/err" "says it is not a cgroup v2 directory" "^kashim attach: $TMP: not a cgroup v2 directory"
	expect_status 1 "a relative path is below the cgroup2 mount" "$KASHIM" attach "kashim-none-$$"
	expect_text "$TMP/err" "names the path it looked for" "^kashim attach: $(cgroup2_root)/kashim-none-$$: No such file or directory$"
	expect_status 1 "a relative path climbing out" "$KASHIM" attach "${CG##*/}/../.."
	expect_text "$TMP/err" "says it cannot climb out" "cannot hold \"\.\.\""
	expect_status 1 "a missing path" "$KASHIM" attach "$CG/none"
	expect_status 1 "a file in a cgroup" "$KASHIM" attach "$CG/cgroup.procs"
	if command -v setpriv > /dev/null; then
		# nobody runs a copy it can read, wherever the checkout is
		public_copy "$KASHIM" > "$TMP/pub.err" || { fail "the scene did not get ready: $(cat "$TMP/pub.err")"; return; }
		expect_status 1 "without privileges" "${NOBODY[@]}" "$PUB/${KASHIM##*/}" attach "$CG"
		expect_text "$TMP/err" "names the capabilities" "^kashim attach: not permitted: .*CAP_BPF and CAP_NET_ADMIN"
		expect_status 1 "status without privileges" "${NOBODY[@]}" "$PUB/${KASHIM##*/}" status
		expect_text "$TMP/err" "status names the capability" "CAP_SYS_ADMIN"
	else
		skip "setpriv (util-linux) is not installed"
	fi
	# An old kernel, as uname(2) reports it under the UNAME26 personality
	# (2.6.x): refused by the version the options need.
	if setarch "$(uname -m)" --uname-2.6 uname -r 2> /dev/null | grep -q '^2\.6\.'; then
		expect_status 1 "an old kernel" setarch "$(uname -m)" --uname-2.6 "$KASHIM" attach "$CG"
		expect_text "$TMP/err" "names the oldest kernel tested" "^kashim attach: this kernel \(2\.6\.[^)]*\) is older than Linux 5\.10, the oldest the cgroup mode is tested on; nothing attached$"
	else
		skip "setarch --uname-2.6 does not work here"
	fi
	"$KASHIM" status > "$TMP/out" 2>&1
	if grep -qF "$CG" "$TMP/out"; then fail "something was attached: $(cat "$TMP/out")"; else ok "nothing attached"; fi
}

# A Go program (raw system calls, no loader; Go's own keepalive off),
# built here offline: client and server in the cgroup.
test_go() {
	need_cmd go || return
	need_cgroup || return
	local port server
	(cd "$HELPERS/gohold" && CGO_ENABLED=0 GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GOFLAGS= \
		GOPROXY=off go build -o "$TMP/gohold" main.go) > "$TMP/go.log" 2>&1 ||
		{ fail "go build: $(head -c 300 "$TMP/go.log")"; return; }
	attach "${CG_ARGS[@]}" || return
	port=$(free_port)
	bg incg "$CG" "$TMP/gohold" serve "$port"
	server=$BG
	wait_listen "$port" || { fail "the Go server does not listen: $(cat "$TMP/bg.$server.log")"; return; }
	bg incg "$CG" "$TMP/gohold" connect "$port"
	expect_socket "$BG" "ESTABLISHED" "$WANT" "Go client (net.Dialer, KeepAlive -1)"
	expect_socket "$server" "ESTABLISHED" "$WANT" "Go server (net.ListenConfig, KeepAlive -1)"
}

# nc from busybox-static (a static build), as client and as server.
test_busybox_static_nc() {
	need_cmd busybox || return
	if ! file -L "$(command -v busybox)" | grep -q "statically linked"; then
		skip "busybox is not the static build (install busybox-static)"
		return
	fi
	need_cgroup && attach "${CG_ARGS[@]}" || return
	local port
	# stdin that never ends: a FIFO this shell holds open (a background
	# job's own stdin would be /dev/null)
	mkfifo "$TMP/in" && exec 3<> "$TMP/in"
	port=$(free_port)
	bg "$HOLD" serve "$port"
	wait_listen "$port" || { fail "the server does not listen"; return; }
	bg incg "$CG" sh -c 'exec busybox nc 127.0.0.1 "$1" < "$0"' "$TMP/in" "$port"
	expect_socket "$BG" "ESTABLISHED" "$WANT" "busybox nc (client)"
	port=$(free_port)
	bg incg "$CG" sh -c 'exec busybox nc -l -p "$1" < "$0"' "$TMP/in" "$port"
	local server=$BG
	wait_listen "$port" || { fail "busybox nc -l does not listen"; return; }
	bg "$HOLD" connect "$port"
	expect_socket "$server" "ESTABLISHED" "$WANT" "busybox nc -l (server)"
	expect_socket "$BG" "ESTABLISHED" "$UNTOUCHED" "its peer outside the cgroup is untouched"
}

# Dead peers, with a static program in the cgroup and each run in a private
# network namespace (tests/deadpeer.py): idle, data in flight and connect
# are noticed within idle + interval x count = 4 s (the automatic user
# timeout); the same program outside the cgroup does not notice.
test_dead_peers() {
	need_cmd unshare tc ss || return
	need_cgroup && attach --idle 2 --interval 1 --count 2 || return
	local sc
	for sc in idle inflight connect; do
		"$PY" "$ROOT/tests/deadpeer.py" run "$sc" tcphold --cgroup "$CG" > "$TMP/$sc.json" 2> "$TMP/err"
	done
	"$PY" "$ROOT/tests/deadpeer.py" run idle tcphold --without --cap 6 > "$TMP/without.json" 2>> "$TMP/err"
	"$PY" - "$TMP" <<'PYEOF'
import json, sys
# The tolerances of t_deadpeer.sh: late by process wake-up and one
# retransmission timeout, early by the quiet client's last byte.
LATE, EARLY = 0.5, 0.35
for sc in ("idle", "inflight", "connect"):
    try:
        r = json.load(open("%s/%s.json" % (sys.argv[1], sc)))
    except ValueError:
        print("not ok - t_cgroup: dead_peers: %s: no result" % sc)
        continue
    m, bound = r["measured"], r["bound"]
    if r["error"] or m is None:
        print("not ok - t_cgroup: dead_peers: %s: %s" % (sc, r["error"] or "not noticed"))
    elif bound - EARLY <= m <= bound + LATE and "timed out" in r["how"]:
        print("ok - t_cgroup: dead_peers: %s: static program in the cgroup noticed after %.2f s, "
              "bound %d s (%s)" % (sc, m, bound, r["how"]))
    else:
        print("not ok - t_cgroup: dead_peers: %s: %.2f s (%s), want %d s" % (sc, m, r["how"], bound))
r = json.load(open("%s/without.json" % sys.argv[1]))
print(("ok - t_cgroup: dead_peers: outside the cgroup, idle: not noticed within %g s" % r["cap"])
      if r["measured"] is None and not r["error"] else
      "not ok - t_cgroup: dead_peers: outside the cgroup: %s" % (r["error"] or r["measured"]))
PYEOF
	[ -s "$TMP/err" ] && fail "deadpeer.py wrote: $(head -c 300 "$TMP/err")"
	if tc qdisc show dev lo | grep -q blackhole; then
		fail "the host's loopback has a blackhole qdisc"
	fi
}

# kashim dropin --cgroup: systemd-analyze verify reads it without a
# complaint, and its ExecStartPre= command, run as systemd would run it
# by a process in a cgroup, attaches kashim there.
test_dropin_cgroup() {
	need_cmd systemd-analyze || return
	need_cgroup || return
	local unit=kashim-t$$.service cmd
	mkdir -p "$TMP/units/$unit.d"
	printf '[Unit]\nDescription=t\n[Service]\nExecStart=%s serve 1\n' "$HOLD" > "$TMP/units/$unit"
	expect_status 0 "dropin --cgroup" "$KASHIM" dropin --cgroup --idle 37 --interval 11 --count 4
	cp "$TMP/out" "$TMP/units/$unit.d/kashim.conf"
	expect_text "$TMP/out" "it attaches before each start, as root, to the cgroup it runs in, a refusal ignored" "^ExecStartPre=-\+$(re_quote "$KASHIM") attach --idle 37s --interval 11s --count 4 --mode respect -- self$"
	SYSTEMD_UNIT_PATH="$TMP/units:" systemd-analyze verify "$TMP/units/$unit" > "$TMP/verify" 2>&1
	if [ $? = 0 ] && ! grep -q "kashim.conf" "$TMP/verify"; then
		ok "systemd-analyze verify: no complaint about the drop-in"
	else
		fail "systemd-analyze verify: $(head -c 400 "$TMP/verify")"
	fi
	# ExecStartPre= as systemd runs it (the prefixes dropped) by a process
	# in a cgroup; tests/t_systemd.sh runs it under a real systemd.
	cmd=$(sed -n 's/^ExecStartPre=-+//p' "$TMP/out")
	incg "$CG" $cmd > "$TMP/pre.out" 2>&1 &
	wait $!
	"$KASHIM" status > "$TMP/status" 2>&1
	if grep -qF "$CG idle=37s interval=11s count=4 user_timeout=81000ms mode=respect" "$TMP/status"; then
		ok "its ExecStartPre= command attaches kashim to the cgroup it runs in"
	else
		fail "ExecStartPre= ($cmd): $(cat "$TMP/pre.out") status: $(cat "$TMP/status")"
	fi
	# the policy options, written as parsed (nothing typed reaches the
	# unit as is), and run as systemd would run the line
	"$KASHIM" detach "$CG" > /dev/null 2>&1
	expect_status 0 "dropin --cgroup with --scope, --only and --skip" "$KASHIM" dropin --cgroup \
		--idle 38 --scope client --only '10.0.0.0/8,[fd00::/8]:443,::1,127.0.0.0/8' --skip 127.0.0.2:5432
	expect_text "$TMP/out" "they are in the ExecStartPre= line" \
		"^ExecStartPre=-\+$(re_quote "$KASHIM") attach --idle 38s --interval 15s --count 9 --mode respect --scope client --only 10\.0\.0\.0/8,\[fd00::/8\]:443,::1/128,127\.0\.0\.0/8 --skip 127\.0\.0\.2/32:5432 -- self$"
	cmd=$(sed -n 's/^ExecStartPre=-+//p' "$TMP/out")
	incg "$CG" $cmd > "$TMP/pre.out" 2>&1 &
	wait $!
	"$KASHIM" status > "$TMP/status" 2>&1
	if grep -qF "$CG idle=38s interval=15s count=9 " "$TMP/status" && grep -qF "scope=client" "$TMP/status" &&
		grep -qxF "  only [fd00::/8]:443" "$TMP/status" && grep -qF "  skip 127.0.0.2/32:5432 skipped=0" "$TMP/status"; then
		ok "its ExecStartPre= command attaches those rules and that scope"
	else
		fail "ExecStartPre= ($cmd): $(cat "$TMP/pre.out") status: $(grep -A6 -F "$CG" "$TMP/status")"
	fi
	expect_status 2 "dropin --cgroup --config is refused" "$KASHIM" dropin --cgroup --config /etc/kashim.conf
	expect_text "$TMP/err" "as an unknown option" "^kashim dropin: unknown option --config$"
	expect_status 0 "dropin --cgroup --help" "$KASHIM" dropin --cgroup --help
	expect_text "$TMP/out" "it names the options it takes" "^--mode, --scope, --only, --skip"
	expect_text "$TMP/out" "and those it does not" "but --config and$"
	expect_status 2 "dropin --cgroup: a bad value" "$KASHIM" dropin --cgroup --count 500
	expect_text "$TMP/err" "nothing written" "^kashim dropin: nothing written"
	if [ -s "$TMP/out" ]; then fail "something was printed: $(cat "$TMP/out")"; else ok "nothing printed"; fi
}

# Cgroups come and go on a real host while status walks the tree (issue 21:
# one removed between readdir and openat made status say "could not be
# opened" and exit 1): 64 cgroups below $CG made and removed in a loop
# (bounded: 120 s, or until told to stop) while status runs 200 times;
# every run must exit 0 and say nothing.
test_status_while_cgroups_vanish() {
	need_cgroup || return
	local k rc bad=0 first=""
	"$PY" - "$CG" "$TMP/stop" > "$TMP/churn" 2>&1 <<'PYEOF' &
import os, sys, time
top, stop = sys.argv[1], sys.argv[2]
made, end = 0, time.monotonic() + 120
while not os.path.exists(stop) and time.monotonic() < end:
    for i in range(64):
        os.mkdir("%s/churn%d" % (top, i))
        made += 1
    for i in range(64):
        os.rmdir("%s/churn%d" % (top, i))
print(made)
PYEOF
	local churn=$!
	wait_for 60 test -d "$CG/churn0" || { fail "the churner did not start: $(cat "$TMP/churn")"; return; }
	for k in $(seq 200); do
		"$KASHIM" status > "$TMP/out" 2> "$TMP/err"
		rc=$?
		if [ "$rc" != 0 ] || [ -s "$TMP/err" ]; then
			bad=$((bad + 1))
			[ -n "$first" ] || first="status $rc: $(head -c 300 "$TMP/err")"
		fi
	done
	touch "$TMP/stop"
	wait "$churn"
	if [ "$(cat "$TMP/churn")" -gt 64 ] 2> /dev/null && [ "$bad" = 0 ]; then
		ok "200 runs while $(cat "$TMP/churn") cgroups were made and removed: every one exit 0, nothing on stderr"
	else
		fail "$bad of 200 runs failed (${first:-none}); churner: $(head -c 200 "$TMP/churn")"
	fi
}

# ... and one that is there and cannot be opened still is a problem: a
# chain 24 deep below $CG walked with at most 12 descriptors (EMFILE).
test_status_unopened_cgroup() {
	need_cgroup || return
	local d=$CG k
	for k in $(seq 24); do d=$d/d; done
	mkdir -p "$d" || { fail "cannot make $d"; return; }
	expect_status 1 "status with 12 descriptors" bash -c 'ulimit -n 12 && ulimit -Hn 12 && exec "$0" status' "$KASHIM"
	expect_text "$TMP/err" "says cgroups could not be opened, and why" \
		'^kashim status: [0-9]+ cgroups could not be opened \(Too many open files\); the list may be incomplete$'
}

# The template unit kashim-attach@.service, its ExecStart= and ExecStop=
# lines expanded as systemd expands them (the specifiers, then the words
# split, quotes honoured), run by a process in $CG: an instance that
# unescapes to self, to a name starting with -, or to one with a space
# is the cgroup of that path below the mount, never the unit's own cgroup
# (issue 21: %I was passed bare, so "self" attached to the caller's
# cgroup and "-x" was read as an option).
template_line() { # KEY INSTANCE: the expanded command, one word a line
	"$PY" - "$ROOT/scripts/systemd/kashim-attach@.service" "$1" "$2" "$KASHIM" "$TMP/kashim.conf" <<'PYEOF'
import shlex, sys
unit, key, instance, kashim, conf = sys.argv[1:]
for line in open(unit):
    if line.startswith(key + "="):
        text = line[len(key) + 1:].strip().replace("%I", instance)
        for word in shlex.split(text.replace("/usr/local/bin/kashim", kashim).replace("/etc/kashim.conf", conf)):
            print(word)
PYEOF
}
test_template_unit_operands() {
	need_cgroup || return
	local root name path out
	local -a cmd
	root=$(cgroup2_root)
	[ "$root" = / ] && root=""
	printf 'idle = 43s\n' > "$TMP/kashim.conf"
	for name in self "-kashim-t$$" "kashim t$$"; do
		path=$root/$name
		if [ -e "$path" ]; then
			skip "$path exists already"
			continue
		fi
		mkdir "$path" || { fail "cannot make $path"; continue; }
		CG_MORE+=("$path")
		mapfile -t cmd < <(template_line ExecStart "$name")
		incg "$CG" "${cmd[@]}" > "$TMP/start.out" 2>&1 &
		wait $!
		out=$?
		"$KASHIM" status > "$TMP/status" 2>&1
		if [ "$out" = 0 ] && grep -qF "$(printf '%s' "$path" | sed 's/ /\\x20/g') idle=43s " "$TMP/status" &&
			! grep -qF "$CG " "$TMP/status"; then
			ok "instance '$name': ExecStart= attaches to $path, not to the unit's own cgroup"
		else
			fail "instance '$name': ExecStart= (${cmd[*]}) status $out: $(cat "$TMP/start.out"); status: $(grep -F -e "$root/" "$TMP/status" | head -5)"
		fi
		mapfile -t cmd < <(template_line ExecStop "$name")
		incg "$CG" "${cmd[@]}" > "$TMP/stop.out" 2>&1 &
		wait $!
		out=$?
		"$KASHIM" status > "$TMP/status" 2>&1
		if [ "$out" = 0 ] && ! grep -qF "idle=43s " "$TMP/status"; then
			ok "instance '$name': ExecStop= detaches from it"
		else
			fail "instance '$name': ExecStop= (${cmd[*]}) status $out: $(cat "$TMP/stop.out")"
		fi
	done
}

# Every operand position takes "--": attach and detach of a cgroup whose
# name starts with -.
test_double_dash() {
	need_cgroup || return
	mkdir "$CG/-x" || { fail "cannot make $CG/-x"; return; }
	expect_status 0 "attach -- a cgroup named -x" "$KASHIM" attach --idle 44 -- "$CG/-x"
	expect_status 0 "detach -- it" "$KASHIM" detach -- "$CG/-x"
	expect_status 2 "detach -x without --" "$KASHIM" detach -x
	expect_text "$TMP/err" "is a usage error" '^usage: kashim detach \[--\] CGROUP$'
	expect_status 0 "attach ./-x, relative to the mount" "$KASHIM" attach --idle 44 "./${CG#"$(cgroup2_root)"/}/-x"
	expect_status 0 "detach -- ./-x" "$KASHIM" detach -- "./${CG#"$(cgroup2_root)"/}/-x"
}

# The tests pass from any checkout: the dropin test (the checkout's path
# in its patterns), run from a copy whose path holds a +.
test_from_a_path_with_a_plus() {
	need_cgroup || return
	local copy=$TMP/clone+1/kashim
	mkdir -p "$copy" && cp -a "$ROOT/kashim" "$ROOT/tests" "$ROOT/scripts" "$copy/" ||
		{ fail "cannot copy the checkout to $copy"; return; }
	TESTS_ROOT=$copy TEST_ONLY=dropin_cgroup TEST_KASHIM= bash "$copy/tests/t_cgroup.sh" > "$TMP/inner" 2>&1
	if grep -q '^ok - ' "$TMP/inner" && ! grep -q '^not ok - ' "$TMP/inner" && ! grep -q '^skip - ' "$TMP/inner"; then
		ok "dropin_cgroup passes from $copy ($(grep -c '^ok - ' "$TMP/inner") checks)"
	else
		fail "dropin_cgroup from $copy: $(grep -v '^ok - ' "$TMP/inner" | head -c 600)"
	fi
}

# doctor and run point to the cgroup mode for a program out of
# LD_PRELOAD's reach, with the command to use.
test_doctor_and_run_hint() {
	local root
	root=$(cgroup2_root)
	[ "$root" = / ] && root=""
	expect_status 1 "doctor: a static program" "$KASHIM" doctor "$HOLD"
	expect_text "$TMP/out" "doctor points to the cgroup mode" "^hint: the cgroup mode reaches it: mkdir ${root:-}/NAME && kashim attach ${root:-}/NAME"
	expect_status 125 "run refuses a static program" "$KASHIM" run "$HOLD" serve 1
	if [ "$(wc -l < "$TMP/err")" = 1 ] && grep -q "refusing .*kashim attach ${root:-}/NAME" "$TMP/err"; then
		ok "run's one-line refusal points to the cgroup mode"
	else
		fail "run: $(cat "$TMP/err")"
	fi
}

# CAP_BPF + CAP_NET_ADMIN without CAP_SYS_ADMIN: attach works on a cgroup
# with no kashim; on one with kashim it refuses (it cannot tell kashim's
# program from others), leaving the attachment as it was.
test_capabilities() {
	need_cmd setpriv || return
	need_cgroup || return
	local nosys=(setpriv --inh-caps=-all --bounding-set=-sys_admin)
	expect_status 0 "attach with CAP_BPF and CAP_NET_ADMIN only" "${nosys[@]}" "$KASHIM" attach --idle 44 "$CG"
	expect_status 1 "attach again without CAP_SYS_ADMIN" "${nosys[@]}" "$KASHIM" attach --idle 55 "$CG"
	expect_text "$TMP/err" "says CAP_SYS_ADMIN is needed" "^kashim attach: not permitted: .*CAP_SYS_ADMIN.*nothing attached$"
	"$KASHIM" status > "$TMP/status" 2>&1
	if [ "$(grep -cF "$CG " "$TMP/status")" = 1 ] && grep -qF "$CG idle=44s " "$TMP/status"; then
		ok "one attachment, its settings unchanged"
	else
		fail "status: $(cat "$TMP/status")"
	fi
	expect_status 1 "detach without CAP_SYS_ADMIN" "${nosys[@]}" "$KASHIM" detach "$CG"
	expect_text "$TMP/err" "names CAP_SYS_ADMIN" "^kashim detach: not permitted: needs CAP_SYS_ADMIN"
}

# A cgroup its manager removes and makes anew (a container's own, a
# systemd unit's own but a slice's) keeps kashim only until that container
# or unit stops or restarts (issues 28 and 29: attach said nothing of it,
# and kashim-attach@ stayed active for an attachment gone): attach says so
# and what lasts instead, and attaches; --lasting refuses it, status 2,
# nothing attached.  The names are each engine's and systemd's, made
# below $CG.
ID=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
lasting_case() { # BELOW-CG WHAT MANAGER ROUTE: attach, then attach --lasting
	local path=$CG/$1 said
	mkdir -p "$path" || { fail "cannot make $path"; return; }
	expect_status 0 "attach $1" "$KASHIM" attach --idle 44 "$path"
	said="kashim attach: $path $2: covered until it stops or restarts ($3 removes that cgroup, and kashim with it); for coverage that lasts, $4"
	if [ "$(cat "$TMP/err")" = "$said" ]; then ok "it says: $said"; else fail "$1: it says '$(cat "$TMP/err")', want '$said'"; fi
	"$KASHIM" detach "$path" > /dev/null 2>&1
	expect_status 2 "attach --lasting $1 is refused" "$KASHIM" attach --lasting --idle 44 "$path"
	said="kashim attach: --lasting: $path $2, which $3 removes when it stops or restarts; for coverage that lasts, $4; nothing attached"
	if [ "$(cat "$TMP/err")" = "$said" ]; then ok "it says: $said"; else fail "$1: it says '$(cat "$TMP/err")', want '$said'"; fi
	if "$KASHIM" status 2>&1 | grep -qF "$path idle="; then fail "--lasting attached to $path"; else ok "nothing attached"; fi
}
test_lasting() {
	need_cgroup || return
	local tail="(every container started there, restarts included)" hook dropin
	local stail="(every container started there, restarts included, and every other service of that slice)"
	dropin="use kashim dropin --cgroup (it attaches at each start) or attach to its slice"
	hook=", or use kashim's OCI hook, which attaches to each container as it starts (kashim(1))"
	lasting_case "docker/$ID" "is the cgroup of docker container 0123456789ab" docker "attach to docker's parent cgroup $CG/docker $tail"
	lasting_case "system.slice/docker-$ID.scope" "is the cgroup of docker container 0123456789ab" docker "attach to docker's parent cgroup $CG/system.slice $stail"
	lasting_case "libpod_parent/libpod-$ID" "is the cgroup of podman container 0123456789ab" podman "attach to podman's parent cgroup $CG/libpod_parent $tail$hook"
	lasting_case "machine.slice/libpod-$ID.scope" "is the cgroup of podman container 0123456789ab" podman "attach to podman's parent cgroup $CG/machine.slice $stail$hook"
	lasting_case "kubepods.slice/kubepods-pod1.slice/crio-$ID.scope" "is the cgroup of CRI-O container 0123456789ab" CRI-O "attach to CRI-O's parent cgroup $CG/kubepods.slice/kubepods-pod1.slice $stail$hook"
	lasting_case "kubepods.slice/kubepods-pod2.slice/cri-containerd-$ID.scope" "is the cgroup of containerd container 0123456789ab" containerd "attach to containerd's parent cgroup $CG/kubepods.slice/kubepods-pod2.slice $stail"
	lasting_case "app.slice/api.service" "is the cgroup of api.service" systemd "$dropin $CG/app.slice"
	lasting_case "app.slice/api.service/worker" "is in the cgroup of api.service" systemd "$dropin $CG/app.slice"
	lasting_case "app.slice/api.socket" "is the cgroup of api.socket" systemd "use kashim dropin --cgroup --socket (it attaches at each start) or attach to its slice $CG/app.slice"
	lasting_case "user.slice/session-3.scope" "is the cgroup of session-3.scope" systemd "attach to its slice $CG/user.slice"
	local d
	for d in app.slice kubepods.slice/kubepods-pod1.slice init.scope docker libpod_parent "docker/$ID-x" "libpod-${ID:1}"; do
		mkdir -p "$CG/$d"
		expect_status 0 "attach --lasting $d: it lasts" "$KASHIM" attach --lasting --idle 44 "$CG/$d"
		if [ -s "$TMP/err" ]; then fail "$d: it says $(cat "$TMP/err")"; else ok "$d: nothing said"; fi
	done
}

# kashim dropin --cgroup's ExecStartPre= (attach ... -- self), run by
# systemd in the unit's own cgroup (INVOCATION_ID set), attaches again at
# each start: nothing to say.  The same command from elsewhere (no
# INVOCATION_ID) gets the note.
test_lasting_self_in_a_unit() {
	need_cgroup || return
	mkdir -p "$CG/app.slice/api.service" || { fail "cannot make the unit's cgroup"; return; }
	INVOCATION_ID=0123 incg "$CG/app.slice/api.service" "$KASHIM" attach --idle 44 -- self > "$TMP/out" 2> "$TMP/err" &
	wait $!
	if [ $? = 0 ] && [ ! -s "$TMP/err" ] && "$KASHIM" status 2>&1 | grep -qF "$CG/app.slice/api.service idle=44s"; then
		ok "attach self in the unit, as systemd runs it: attached, nothing said"
	else
		fail "attach self with INVOCATION_ID: $(cat "$TMP/err")"
	fi
	incg "$CG/app.slice/api.service" "$KASHIM" attach --idle 44 -- self > "$TMP/out" 2> "$TMP/err" &
	wait $!
	expect_text "$TMP/err" "without INVOCATION_ID: the note" "^kashim attach: .*/api.service is the cgroup of api.service: covered until it stops or restarts"
}

# kashim-attach@.service (its ExecStart= as systemd expands it) refuses a
# unit's own cgroup: it would say active for an attachment gone at the
# unit's first restart (issue 29).
test_template_refuses_a_unit_cgroup() {
	need_cgroup || return
	local rel out
	local -a cmd
	rel=${CG#"$(cgroup2_root)"/}/app.slice/api.service
	mkdir -p "$CG/app.slice/api.service" || { fail "cannot make the unit's cgroup"; return; }
	printf 'idle = 43s\n' > "$TMP/kashim.conf"
	mapfile -t cmd < <(template_line ExecStart "$rel")
	"${cmd[@]}" > "$TMP/out" 2> "$TMP/err"
	out=$?
	if [ "$out" = 2 ] && ! "$KASHIM" status 2>&1 | grep -qF "api.service idle="; then
		ok "kashim-attach@ on app.slice/api.service fails (status 2), nothing attached"
	else
		fail "ExecStart= (${cmd[*]}) status $out: $(cat "$TMP/err")"
	fi
	expect_text "$TMP/err" "its journal line says why and what to do" \
		"^kashim attach: --lasting: .*/app.slice/api.service is the cgroup of api.service, which systemd removes when it stops or restarts; for coverage that lasts, use kashim dropin --cgroup"
}

# A listener created in the cgroup before the attach: the connections it
# accepts after the attach are covered (the kernel runs the program at
# each accept, for the listener's cgroup); one it accepted before is not
# (issue 29: attach --help said "a listener created from now on").
test_listener_made_before_the_attach() {
	need_cgroup || return
	local port server
	port=$(free_port)
	bg incg "$CG" "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	server=$BG
	wait_listen "$port" || { fail "the server does not listen: $(cat "$TMP/bg.$server.log")"; return; }
	bg "$HOLD" connect "$port"
	expect_socket "$server" "state=ESTABLISHED" "$UNTOUCHED" "accepted before the attach: left alone"
	attach "${CG_ARGS[@]}" || return
	bg "$HOLD" connect "$port"
	expect_socket "$server" "state=ESTABLISHED.*keepalive=1" "$WANT" "accepted after the attach, on the listener made before it: covered"
	expect_socket "$server" "state=ESTABLISHED.*keepalive=0" "$UNTOUCHED" "the one accepted before stays as it was"
	expect_status 0 "attach --help" "$KASHIM" attach --help
	expect_text "$TMP/out" "attach --help says so" "^\(before the attach too: the kernel runs the program at each accept; not$"
}

# --container: the engine's command, never a shell; what it says when
# there is none, when it does not answer, and a bad combination.
test_container_refusals() {
	need_cgroup || return
	PATH=/nonexistent expect_status 1 "--container with no engine" "$KASHIM" attach --container web
	expect_text "$TMP/err" "says neither is installed" \
		"^kashim attach: --container web: docker is not installed here \(not in PATH\); podman is not installed here \(not in PATH\); nothing attached$"
	if command -v docker > /dev/null; then
		HOME=$TMP DOCKER_CONFIG=$TMP DOCKER_HOST=unix://$TMP/none.sock expect_status 1 "--engine docker, no daemon" \
			"$KASHIM" attach --container web --engine docker
		expect_text "$TMP/err" "quotes docker's own line" \
			"^kashim attach: --container web: docker container inspect: .*$TMP/none.sock.*; nothing attached$"
	else
		fail "docker is not installed (.ci/run installs docker.io)"
	fi
	expect_status 2 "--container and a CGROUP" "$KASHIM" attach --container web "$CG"
	expect_text "$TMP/err" "is a usage error" "^kashim attach: --container names the cgroup: no CGROUP with it$"
	expect_status 2 "--engine lxc" "$KASHIM" attach --container web --engine lxc
	expect_text "$TMP/err" "names the engines" "^kashim attach: --engine: docker or podman$"
	PATH=/nonexistent expect_status 1 "--container=web, as --idle=30s" "$KASHIM" attach --container=web --engine=podman
	expect_text "$TMP/err" "is read as --container web" "^kashim attach: --container web: podman is not installed here \(not in PATH\); nothing attached$"
	expect_status 2 "--container -x" "$KASHIM" attach --container -x
	expect_status 2 "--engine alone" "$KASHIM" attach --engine docker "$CG"
}

# --oci-hook: the runtime's state on standard input; only its top-level
# "pid" counts (one in an annotation does not), and the pid's cgroup is
# attached, with no note (the hook attaches at each start).
test_oci_hook_state() {
	need_cgroup || return
	local pid
	mkdir -p "$CG/libpod_parent/libpod-$ID"
	bg incg "$CG/libpod_parent/libpod-$ID" sleep 60
	pid=$BG
	wait_for 60 grep -q . "$CG/libpod_parent/libpod-$ID/cgroup.procs" || { fail "the process did not move"; return; }
	printf '{"ociVersion":"1.0.2","id":"%s","status":"created","annotations":{"pid":"%s"},"bundle":"/b"}' "$ID" "$pid" > "$TMP/state"
	# Nothing attached, and status 0 all the same: the hook fails open.
	expect_status 0 "a pid only in an annotation" "$KASHIM" attach --oci-hook < "$TMP/state"
	expect_text "$TMP/err" "says there is no pid" '^kashim attach: --oci-hook: no "pid" in the container state on the standard input'
	expect_text "$TMP/err" "says the container starts without it" '^kashim attach: --oci-hook: the container starts without kashim$'
	printf '{"ociVersion":"1.0.2","id":"%s","annotations":{"a":"}{\\"pid\\": 1"},"status":"created","pid":%s,"bundle":"/b"}' "$ID" "$pid" > "$TMP/state"
	expect_status 0 "the state of a created container" "$KASHIM" attach --oci-hook --idle 44 < "$TMP/state"
	if [ -s "$TMP/err" ]; then fail "it said: $(cat "$TMP/err")"; else ok "nothing said"; fi
	"$KASHIM" status > "$TMP/status" 2>&1
	expect_text "$TMP/status" "the container's cgroup is attached" "^$(re_quote "$CG/libpod_parent/libpod-$ID") idle=44s "
	expect_status 0 "--oci-hook with no state (fails open)" "$KASHIM" attach --oci-hook < /dev/null
	expect_text "$TMP/err" "with no state: nothing attached, said" '^kashim attach: --oci-hook: the container starts without kashim$'
	"$KASHIM" detach "$CG/libpod_parent/libpod-$ID" > /dev/null 2>&1
	# A container left in its caller's cgroup (--cgroups=disabled): the
	# hook must not attach to the caller's session or service.
	mkdir -p "$CG/user.slice/session-9.scope" "$CG/docker/$ID/init"
	bg incg "$CG/user.slice/session-9.scope" sleep 60
	printf '{"ociVersion":"1.0.2","id":"%s","status":"created","pid":%s,"bundle":"/b"}' "$ID" "$BG" > "$TMP/state"
	wait_for 60 grep -q . "$CG/user.slice/session-9.scope/cgroup.procs" || { fail "the process did not move"; return; }
	expect_status 0 "a container in its caller's cgroup (fails open)" "$KASHIM" attach --oci-hook < "$TMP/state"
	expect_text "$TMP/err" "says the cgroup is not the container's own" "a cgroup that is not the container's own"
	# A process below its container's cgroup (docker:dind's init): the
	# container's own cgroup is attached, not the one below.
	bg incg "$CG/docker/$ID/init" sleep 60
	printf '{"ociVersion":"1.0.2","id":"%s","status":"created","pid":%s,"bundle":"/b"}' "$ID" "$BG" > "$TMP/state"
	wait_for 60 grep -q . "$CG/docker/$ID/init/cgroup.procs" || { fail "the process did not move"; return; }
	expect_status 0 "a process below its container's cgroup" "$KASHIM" attach --oci-hook < "$TMP/state"
	"$KASHIM" status > "$TMP/status" 2>&1
	expect_text "$TMP/status" "the container's own cgroup is attached, not the one below" "^$(re_quote "$CG/docker/$ID") idle="
	if grep -qF "$CG/user.slice" "$TMP/status"; then fail "the caller's session is attached"; else ok "the caller's session is not attached"; fi
	"$KASHIM" detach "$CG/docker/$ID" > /dev/null 2>&1
}

# Under a real systemd (unified layout, tests/helpers/nspawn.sh): a
# service's own cgroup attached by hand gets the note, is covered, and is
# not after systemctl restart (a new cgroup), as the note said;
# kashim-attach@ on it fails (--lasting) with that line in its journal
# instead of staying active for nothing; kashim dropin --cgroup covers the
# service again after each restart, with no note in its journal.
test_systemd_service_cgroup() {
	nspawn_usable || return
	nspawn_prepare || return
	printf 'idle = 37s\ninterval = 11s\ncount = 4\n' > "$SD/kashim.conf"
	"$KASHIM" dropin --cgroup "${CG_ARGS[@]}" > "$SD/dropin.conf" || { fail "kashim dropin --cgroup"; return; }
	printf '[Service]\nExecStart=%s serve 7120\n' "$HOLD" > "$SD/units/kt-api.service"
	printf '[Service]\nExecStart=%s serve 7121\n' "$HOLD" > "$SD/units/kt-drop.service"
	mkdir -p "$SD/units/kt-drop.service.d" && cp "$SD/dropin.conf" "$SD/units/kt-drop.service.d/kashim.conf"
	nspawn_plan
	{ echo "T='$T'"; cat <<-'PLAN'
	systemctl start kt-api.service
	"$KASHIM" attach --idle 37 --interval 11 --count 4 system.slice/kt-api.service 2> "$TMP/note"
	rc=$?
	want="kashim attach: $CGROOT/system.slice/kt-api.service is the cgroup of kt-api.service: covered until it stops or restarts (systemd removes that cgroup, and kashim with it); for coverage that lasts, use kashim dropin --cgroup (it attaches at each start) or attach to its slice $CGROOT/system.slice"
	if [ "$rc" = 0 ] && [ "$(cat "$TMP/note")" = "$want" ]; then ok "attach on the service's cgroup, status 0: $want"; else fail "attach: status $rc: $(cat "$TMP/note")"; fi
	serve_check kt-api.service 7120 "$WANT" "attached by hand to the service's own cgroup: covered"
	restart_check kt-api.service 7120 "$UNTOUCHED" "after systemctl restart: no longer covered, as the note said"
	if "$KASHIM" status 2>&1 | grep -qF "kt-api.service idle="; then fail "status still lists it"; else ok "status no longer lists it"; fi
	A="kashim-attach@$(systemd-escape --path /system.slice/kt-api.service).service"
	systemctl start "$A" 2> /dev/null
	if [ "$(systemctl is-active "$A")" != active ] && ! "$KASHIM" status 2>&1 | grep -qF "kt-api.service idle="; then
		ok "$A: $(systemctl is-active "$A"), nothing attached"
	else
		fail "$A is $(systemctl is-active "$A"): $(unit_says "$A")"
	fi
	journalctl -q -b -o cat -u "$A" 2> /dev/null | grep '^kashim attach:' > "$TMP/journal"
	if [ "$(wc -l < "$TMP/journal")" = 1 ] && grep -q "^kashim attach: --lasting: .*/system.slice/kt-api.service is the cgroup of kt-api.service, which systemd removes when it stops or restarts; for coverage that lasts, use kashim dropin --cgroup" "$TMP/journal"; then
		ok "$A: its journal says why, and what to use: $(cat "$TMP/journal")"
	else
		fail "$A: its journal: $(unit_says "$A")"
	fi
	serve_check kt-drop.service 7121 "$WANT" "kashim dropin --cgroup: covered"
	restart_check kt-drop.service 7121 "$WANT" "kashim dropin --cgroup, after systemctl restart: covered again"
	lines=$(journalctl -q -b -o cat -u kt-drop.service 2> /dev/null | grep -c '^kashim')
	if [ "$lines" = 0 ]; then ok "no kashim line in the service's journal (attached at each start: nothing to say)"; else fail "its journal: $(unit_says kt-drop.service)"; fi
	PLAN
	} > "$SD/res/plan.sh"
	nspawn_boot service-cgroup unified bpf 90
}

run_tests
