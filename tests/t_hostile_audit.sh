# SPDX-License-Identifier: MIT
# kashim audit and inspect against hostile processes: a program and a
# cgroup whose names are not UTF-8, one connection on ten descriptors in
# two processes, a cgroup path made to forge a /proc/PID/cgroup line, an
# MPTCP connection (its bound checked against the kernel), a connection
# accepted on a listener created in another cgroup, a program that an
# unprivileged user's own mount namespace names /usr/bin/passwd.
# TEST_KASHIM=path runs it against another build of the command.
. "$(dirname "$0")/lib.sh"

K=${TEST_KASHIM:-$ROOT/kashim}
HA=$HELPERS/hostile_audit.py

# need_cgroup: sets CGROOT and CG (a fresh cgroup of this test, removed
# at the end with everything below it).
need_cgroup() {
	need_root || return 1
	CGROOT=$(cgroup2_root)
	[ -n "$CGROOT" ] && [ -w "$CGROOT" ] || { skip "no writable cgroup v2 mount"; return 1; }
	CG=$CGROOT/kashim-ha-$$-$RANDOM
	mkdir "$CG" || { fail "cannot make $CG"; return 1; }
	CG_MADE=$CG
}

# The processes of the test's cgroups are killed with the test (bg), then
# the cgroups go, deepest first, once the kernel has let the killed
# processes go (up to 60 s: a loaded machine reaps slowly).
cgroups_empty() { ! find "$CG_MADE" -name cgroup.procs -exec cat {} + 2> /dev/null | grep -q .; }
remove_cgroups() {
	[ -n "${CG_MADE:-}" ] || return 0
	wait_for 60 cgroups_empty
	find "$CG_MADE" -depth -type d -exec rmdir {} + 2> /dev/null
	[ -d "$CG_MADE" ] && fail "cgroup $CG_MADE left behind"
	return 0
}
trap_cleanup() { cleanup; remove_cgroups; }

# in_cgroup DIR CMD...: CMD, started in cgroup DIR, in the background (bg).
in_cgroup() {
	local dir=$1
	shift
	bg bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' - "$dir" "$@"
}

# wait_file FILE WHAT [LOG]: up to 60 s for FILE; false, and one failure
# naming WHAT (and the start of LOG), when it did not appear.  (Not named
# wait_for: that is lib.sh's, which wait_listen and expect_socket use.)
wait_file() {
	wait_for 60 test -e "$1" && return 0
	fail "the scene did not get ready: $2 ($1 missing after 60 s)${3:+: $(head -c 200 "$3" 2> /dev/null)}"
	return 1
}

# The bounded wait and the listener check of lib.sh, for the scenes that
# run in a bash of their own in private namespaces.
SCENE_LIB="$(declare -f wait_for listening)"

log_says_ready() { grep -q ready "$1" 2> /dev/null; }
listens_as() { ss -Htlnp | grep -q "pid=$1,"; }

# audit_json OUT: kashim audit --json into OUT; status 0 and a document
# that strict UTF-8 JSON accepts.
audit_json() {
	"$K" audit --json > "$1" 2> "$TMP/audit.err" || { fail "audit --json: status $?: $(head -c 300 "$TMP/audit.err")"; return 1; }
	if "$PY" -c 'import json, sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict"))' "$1" 2> "$TMP/json.err"; then
		return 0
	fi
	fail "audit --json is not valid UTF-8 JSON: $(tail -n 1 "$TMP/json.err")"
	return 1
}

# pyq OUT PID EXPR: EXPR (python, with doc, progs: the programs holding
# PID, socks: their sockets) is true.
pyq() {
	"$PY" - "$@" <<'PYEOF'
import json, sys
doc = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
pid = int(sys.argv[2])
progs = [p for p in doc["programs"] if pid in p["pids"]]
socks = [s for p in progs for s in p["sockets"] if s["pid"] == pid]
ok = eval(sys.argv[3])
if not ok:
    print("false: %s; programs %s" % (sys.argv[3], json.dumps(progs)[:600]))
sys.exit(0 if ok else 1)
PYEOF
}

check() { # WHAT OUT PID EXPR
	local what=$1 out
	shift
	if out=$(pyq "$@" 2>&1); then ok "$what"; else fail "$what: $out"; fi
}

test_names_that_are_not_utf8() {
	need_cgroup || return
	trap trap_cleanup EXIT
	local bad=$'\xff\xfe\x1b[31m' exe dir port
	exe="$TMP/hold-$bad"
	cp "$ROOT/tests/tcphold" "$exe" && chmod 755 "$exe"
	dir="$CG/cg-$bad.service"
	mkdir "$dir" || { fail "cannot make a cgroup named with \\xff"; return; }
	port=$(free_port)
	in_cgroup "$dir" "$exe" serve "$port"
	wait_listen "$port" || { fail "the scene did not get ready: no listener on $port within 60 s"; return; }
	in_cgroup "$dir" "$exe" connect "$port"
	local client=$BG
	wait_for 60 log_says_ready "$TMP/bg.$client.log" ||
		{ fail "the scene did not get ready: the client did not connect within 60 s: $(head -c 200 "$TMP/bg.$client.log")"; return; }
	"$K" audit --prometheus > "$TMP/a.prom" 2> "$TMP/err"
	if promtool check metrics < "$TMP/a.prom" > "$TMP/lint" 2>&1; then
		ok "promtool check metrics accepts audit --prometheus"
	else
		fail "promtool: $(head -c 300 "$TMP/lint")"
	fi
	grep -aF 'unit="cg-\\xff\\xfe\\x1b[31m.service"' "$TMP/a.prom" | grep -q . &&
		ok "the label holds the text \\xff\\xfe\\x1b" || fail "no such label: $(grep -a 'cg-' "$TMP/a.prom" | head -c 300)"
	"$K" audit > "$TMP/a.txt"
	if grep -a "cg-" "$TMP/a.txt" | grep -q $'\x1b'; then fail "the text table holds the raw escape"; else
		grep -aqF 'cg-???[31m.service' "$TMP/a.txt" && ok "the text table shows them as ?" || fail "$(grep -a cg- "$TMP/a.txt")"
	fi
	audit_json "$TMP/a.json" || return
	ok "audit --json is valid JSON with a program and a cgroup named with bytes that are not UTF-8"
	check "the bytes are written as \\xHH, the escape as \\u001b" "$TMP/a.json" "$client" \
		'progs and progs[0]["program"].endswith("hold-\\xff\\xfe\x1b[31m") and progs[0]["unit"] == "cg-\\xff\\xfe\x1b[31m.service"'
}

test_one_connection_on_ten_descriptors() {
	need_cgroup || return
	trap trap_cleanup EXIT
	mkdir "$TMP/d" "$CG/dups.service"
	in_cgroup "$CG/dups.service" "$PY" "$HA" dups "$TMP/d"
	wait_file "$TMP/d/ready" "dups" "$TMP/bg.$BG.log" || return
	local pid child
	read -r pid child _ < "$TMP/d/ready"
	audit_json "$TMP/a.json" || return
	check "one connection counted (it is on fds 0, 1, 2 and 7 more, in two processes), and its peer" "$TMP/a.json" "$pid" \
		'len(progs) == 1 and progs[0]["connections"] == 2 and sorted(progs[0]["pids"]) == sorted([pid, '"$child"'])'
	check "the socket lists its 10 descriptors and 2 processes" "$TMP/a.json" "$pid" \
		'[(s["descriptors"], s["processes"], s["fds"][:3]) for s in socks if s["descriptors"] > 1] == [(10, 2, [0, 1, 2])]'
	"$K" audit > "$TMP/a.txt"
	grep -E "^\S+python\S*\s+\S+\s+($pid,$child|$child,$pid)\s+2\s" "$TMP/a.txt" > /dev/null &&
		ok "the text table says 2 connections" || fail "$(grep -E "$pid|$child" "$TMP/a.txt")"
}

test_cgroup_path_made_to_forge_a_line() {
	need_cgroup || return
	trap trap_cleanup EXIT
	# The line is "0::PATH\n"; the old reader took 1023 bytes, and the
	# rest of the line, here "0::/system.slice/sshd.service", as a line.
	local rel=${CG#"$CGROOT"}/deleg.service dir pad
	while [ $((${#rel} + 200)) -lt 1019 ]; do rel=$rel/$(printf 'p%.0s' $(seq 199)); done
	pad=$((1019 - ${#rel} - 1))
	rel=$rel/$(printf 'q%.0s' $(seq "$pad"))/0::/system.slice/sshd.service
	dir=$CGROOT$rel
	mkdir -p "$dir" || { fail "cannot make $dir"; return; }
	in_cgroup "$dir" "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$(free_port)"
	local pid=$BG
	wait_for 60 listens_as "$pid" ||
		{ fail "the scene did not get ready: pid $pid did not listen within 60 s: $(head -c 200 "$TMP/bg.$pid.log")"; return; }
	audit_json "$TMP/a.json" || return
	check "the whole cgroup path, and the unit the manager made (deleg.service), not sshd.service" "$TMP/a.json" "$pid" \
		'progs and progs[0]["cgroup"] == "'"$rel"'" and progs[0]["unit"] == "deleg.service"'
}

test_mptcp_bound_is_the_kernels() {
	need_cmd unshare tc || return
	need_cgroup || return
	trap trap_cleanup EXIT
	mkdir "$TMP/m" "$CG/mptcp.service"
	local home
	home=$(sed -n 's/^0:://p' /proc/self/cgroup)
	echo $BASHPID > "$CG/mptcp.service/cgroup.procs" # the child below starts there
	# bounds: 60 s for the connection, the audits, 120 s to notice
	timeout -k 5 400 unshare -n bash -c '
		ip link set lo up
		sysctl -qw net.mptcp.enabled=1 net.mptcp.close_timeout=3 || exit 3
		exec env LD_PRELOAD="$1" KASHIM_IDLE=2 KASHIM_INTERVAL=1 KASHIM_COUNT=2 "$2" "$3" mptcp "$4"
	' - "$LIB" "$PY" "$HA" "$TMP/m" > "$TMP/m/log" 2>&1 &
	BG_PIDS+=($!)
	echo $BASHPID > "$CGROOT$home/cgroup.procs" # this shell back where it was
	if ! wait_for 60 test -e "$TMP/m/ready"; then
		fail "the scene did not get ready: no MPTCP connection within 60 s: $(head -c 200 "$TMP/m/log")"
		return
	fi
	local pid fd
	read -r fd pid < "$TMP/m/ready"
	audit_json "$TMP/a.json" || return
	check "audit: the MPTCP connection is one, its user timeout unknown (null, not -1)" "$TMP/a.json" "$pid" \
		'[(s["protocol"], s["user_timeout_ms"]) for s in socks if s["fd"] == '"$fd"'] == [("mptcp", None)]'
	check "audit: idle bound 2 s + 2 x 1 s on the subflow, then net.mptcp.close_timeout 3 s: 7 s" "$TMP/a.json" "$pid" \
		'[s["idle_bound_s"] for s in socks if s["fd"] == '"$fd"'] == [7.0]'
	"$K" inspect "$pid" > "$TMP/i.txt" 2>&1
	if grep -q -- '-1' "$TMP/i.txt"; then fail "inspect shows -1: $(cat "$TMP/i.txt")"; else
		grep -qE "^$fd .* unknown mptcp: per subflow" "$TMP/i.txt" && ok "inspect: user timeout unknown, mptcp said" || fail "$(cat "$TMP/i.txt")"
	fi
	"$K" inspect --json "$pid" > "$TMP/i.json" 2>&1
	"$PY" -c 'import json, sys; d = [s for s in json.load(open(sys.argv[1])) if s["fd"] == int(sys.argv[2])]; sys.exit(not (d and d[0]["user_timeout_ms"] is None and d[0]["protocol"] == "mptcp"))' \
		"$TMP/i.json" "$fd" && ok "inspect --json: user_timeout_ms null" || fail "$(head -c 400 "$TMP/i.json")"
	touch "$TMP/m/go"
	# the program writes "never" after 120 s; no file at all means it died
	if ! wait_for 180 test -e "$TMP/m/noticed"; then
		fail "the scene did not get ready: no measurement within 180 s: $(head -c 200 "$TMP/m/log")"
		return
	fi
	local took
	read -r took _ < "$TMP/m/noticed"
	if [ "$took" = never ]; then
		fail "the MPTCP connection never noticed its peer vanish"
	elif "$PY" -c 'import sys; sys.exit(not float(sys.argv[1]) <= 7.0 + 1.0)' "$took"; then
		ok "blackholed: the program noticed after $took s, within audit's 7 s bound (1 s of timer slack)"
	else
		fail "the program noticed after $took s, audit said 7 s"
	fi
}

test_connection_accepted_on_a_listener_made_elsewhere() {
	need_cgroup || return
	need_cmd ss || return
	trap 'cleanup; "$K" detach "$CG/attached" > /dev/null 2>&1; remove_cgroups' EXIT
	mkdir "$CG/attached" "$CG/elsewhere" "$TMP/l"
	"$K" attach "${KENV[@]/#/--}" "$CG/attached" > "$TMP/out" 2>&1 ||
		"$K" attach --idle 37 --interval 11 --count 4 "$CG/attached" > "$TMP/out" 2>&1 ||
		{ fail "attach: $(head -c 300 "$TMP/out")"; return; }
	local port server
	port=$(free_port)
	# the listener is made in "elsewhere"; the server is then moved into
	# the attached cgroup by pid, as an operator would
	in_cgroup "$CG/elsewhere" "$PY" -c '
import os, socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(8)
os.dup2(l.fileno(), 3); os.set_inheritable(3, True)
os.execv(sys.executable, [sys.executable, sys.argv[2], "server", sys.argv[3]])' "$port" "$HA" "$TMP/l"
	server=$BG
	wait_file "$TMP/l/ready" "the server" "$TMP/bg.$server.log" || return
	echo "$server" > "$CG/attached/cgroup.procs"
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	# accepted by the server, not only queued on its listener
	if ! wait_for 60 has_socket "$server" "state=ESTABLISHED"; then
		fail "the scene did not get ready: the server did not accept a connection within 60 s: $(peek "$server" 2>&1 | tr '\n' ';')"
		return
	fi
	audit_json "$TMP/a.json" || return
	check "audit: the accepted connection has no keepalive, its socket in the listener's cgroup, not the process's" "$TMP/a.json" "$server" \
		'progs and progs[0]["cgroup"] == "'"${CG#"$CGROOT"}/attached"'" and [(s["keepalive"], s["socket_cgroup"]) for s in socks] == [(False, "'"${CG#"$CGROOT"}/elsewhere"'")]'
	expect_socket "$server" "state=ESTABLISHED" "keepalive=0" "the kernel agrees: keepalive off"
	"$K" audit > "$TMP/a.txt"
	grep -q "belong to another cgroup than their process's" "$TMP/a.txt" && ok "the text says why" || fail "$(tail -n 5 "$TMP/a.txt")"
}

# Two processes of one program in two sub-cgroups of one unit (a delegated
# unit, user@UID.service, a container), each connecting from its own
# cgroup: one row, and neither connection belongs to another cgroup than
# its process's (issue 21: audit compared with the row's first process's
# cgroup, so the second was flagged other_cgroup=1 with the inetd note).
test_processes_of_one_program_in_sub_cgroups_of_a_unit() {
	need_cgroup || return
	need_cmd ss || return
	trap 'cleanup; remove_cgroups' EXIT
	local unit=$CG/kashim-t$$.service port server a b
	mkdir -p "$unit/a" "$unit/b" || { fail "cannot make $unit/a and b"; return; }
	port=$(free_port)
	in_cgroup "$CG" "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	server=$BG
	wait_listen "$port" || { fail "the scene did not get ready: no listener: $(cat "$TMP/bg.$server.log")"; return; }
	in_cgroup "$unit/a" "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	a=$BG
	in_cgroup "$unit/b" "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	b=$BG
	# and one connection held by two processes: made in a, the parent
	# then moves itself to b, its child stays in a
	in_cgroup "$unit/a" "$PY" -c '
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if os.fork() == 0:
    time.sleep(600)
    os._exit(0)
open(sys.argv[2] + "/cgroup.procs", "w").write(str(os.getpid()))
open(sys.argv[3], "w").write("ready")
time.sleep(600)' "$port" "$unit/b" "$TMP/forked"
	wait_for 60 has_socket "$a" "state=ESTABLISHED" && wait_for 60 has_socket "$b" "state=ESTABLISHED" ||
		{ fail "the scene did not get ready: the clients did not connect within 60 s"; return; }
	wait_file "$TMP/forked" "the forked pair" "$TMP/bg.$BG.log" || return
	audit_json "$TMP/a.json" || return
	check "audit: the four processes are one row, kashim-t$$.service" "$TMP/a.json" "$a" \
		'len(progs) == 1 and progs[0]["unit"] == "kashim-t'"$$"'.service" and len(progs[0]["pids"]) == 4'
	check "audit: no connection of the row belongs to another cgroup (one held by a process in b and one in a, made in a)" "$TMP/a.json" "$a" \
		'progs[0]["other_cgroup"] == 0 and [s["socket_cgroup"] for s in progs[0]["sockets"]] == [None] * 3 and sorted(s["processes"] for s in progs[0]["sockets"]) == [1, 1, 2]'
	"$K" audit --prometheus > "$TMP/a.prom" 2> "$TMP/err"
	if grep -qE "^kashim_audit_connections_other_cgroup\{.*unit=\"kashim-t$$\.service\".*\} [1-9]" "$TMP/a.prom"; then
		fail "--prometheus counts one: $(grep "kashim-t$$" "$TMP/a.prom" | grep other_cgroup)"
	else
		ok "--prometheus counts none for the unit"
	fi
}

# The scene of test_program_posing_in_its_own_mount_namespace, run as pid 1
# of a private pid and network namespace (root there): a real program
# (HOLD) serving and connected; as nobody, in user+mount namespaces it
# made itself (unshare -Urm, no privilege), its own copy of the program
# bind-mounted over TARGET, then over HOLD, each holding a connection;
# and, as nobody in such namespaces, the real HOLD.  Audit runs in the
# scene; OUT/pids names the processes; then it waits for OUT/done.
POSE_SCENE='
ip link set lo up || exit 3
n=0
hold() { # PORT WHO CMD...: a server on PORT, then CMD connecting to it
	local port=$1 who=$2
	shift 2
	"$HOLD" serve "$port" > "$OUT/serve.$port" 2>&1 &
	if ! wait_for 60 listening "$port"; then
		echo "no listener on $port within 60 s: $(cat "$OUT/serve.$port")" > "$OUT/failed"
		exit 1
	fi
	"$@" > "$OUT/$who.out" 2>&1 &
	echo "$who $!" >> "$OUT/pids"
	wait_for 60 grep -q ready "$OUT/$who.out" && return 0
	echo "$who: no connection within 60 s: $(cat "$OUT/$who.out")" > "$OUT/failed"
	exit 1
}
nobody() { exec setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urm "$@"; }
hold 5001 real "$HOLD" connect 5001
hold 5002 target nobody sh -c "mount --bind \"\$0\" \"\$1\" && exec \"\$1\" connect 5002" "$EVIL" "$TARGET"
hold 5003 samename nobody sh -c "mount --bind \"\$0\" \"\$1\" && exec \"\$1\" connect 5003" "$EVIL" "$HOLD"
hold 5004 realfile nobody sh -c "exec \"\$0\" connect 5004" "$HOLD"
"$K" audit --json > "$OUT/a.json" 2> "$OUT/a.err"
"$K" audit > "$OUT/a.txt" 2>> "$OUT/a.err"
"$K" audit --prometheus > "$OUT/a.prom" 2>> "$OUT/a.err"
touch "$OUT/ready"
wait_for 600 test -e "$OUT/done" # the test kills it sooner
'

# pose_scene_settled PID: the scene is ready, has failed, or has ended.
pose_scene_settled() { [ -e "$TMP/s/ready" ] || [ -e "$TMP/s/failed" ] || ! kill -0 "$1" 2> /dev/null; }

test_program_posing_in_its_own_mount_namespace() {
	need_cmd unshare setpriv ss || return
	need_cgroup || return
	trap trap_cleanup EXIT
	local target="" t
	for t in /usr/bin/passwd /usr/sbin/sshd /usr/bin/su /usr/bin/env; do
		[ -f "$t" ] && { target=$t; break; }
	done
	# everything nobody runs comes from $PUB, not from the checkout (a
	# clone under a 0700 directory is out of nobody's reach)
	mkdir "$TMP/s" "$TMP/c"
	cp "$ROOT/tests/tcphold" "$TMP/c/hold" && cp "$ROOT/tests/tcphold" "$TMP/c/evil" ||
		{ fail "cannot copy tcphold"; return; }
	public_copy "$TMP/c/hold" "$TMP/c/evil" > "$TMP/why" ||
		{ fail "the scene did not get ready: $(cat "$TMP/why")"; return; }
	local hold=$PUB/hold
	mkdir "$CG/pose.service"
	local home scene
	home=$(sed -n 's/^0:://p' /proc/self/cgroup)
	echo $BASHPID > "$CG/pose.service/cgroup.procs" # the scene starts there
	# bounds: 60 s for each of 4 listeners and 4 connections, the audits
	env OUT="$TMP/s" K="$K" HOLD="$hold" EVIL="$PUB/evil" TARGET="$target" \
		timeout -k 5 540 unshare -pfn --mount-proc --kill-child bash -c "$SCENE_LIB
$POSE_SCENE" \
		> "$TMP/s/log" 2>&1 &
	scene=$!
	BG_PIDS+=("$scene")
	echo $BASHPID > "$CGROOT$home/cgroup.procs" # this shell back where it was
	wait_for 550 pose_scene_settled "$scene"
	[ -e "$TMP/s/ready" ] || { fail "the scene did not get ready: $(cat "$TMP/s/failed" "$TMP/s/log" 2> /dev/null | head -c 400)"; return; }
	local real target_pid samename realfile
	real=$(awk '$1 == "real" { print $2 }' "$TMP/s/pids")
	target_pid=$(awk '$1 == "target" { print $2 }' "$TMP/s/pids")
	samename=$(awk '$1 == "samename" { print $2 }' "$TMP/s/pids")
	realfile=$(awk '$1 == "realfile" { print $2 }' "$TMP/s/pids")
	if "$PY" -c 'import json, sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict"))' "$TMP/s/a.json" 2> "$TMP/json.err"; then
		ok "audit --json in the scene is valid JSON"
	else
		fail "audit --json: $(tail -n 1 "$TMP/json.err") $(head -c 300 "$TMP/s/a.err")"
		return
	fi
	check "nobody's copy mounted over $target is not shown as $target: marked, in a row of its own" "$TMP/s/a.json" "$target_pid" \
		'[(p["program"], p["exe"], p["exe_verified"], pid in p["pids_other_mount_namespace"]) for p in progs] == [("'"$target"' (another mount namespace)", "'"$target"'", False, True)] and not [p for p in doc["programs"] if p["program"] == "'"$target"'"]'
	check "nobody's copy mounted over the host's own program ($hold, same unit) is never in that program's row" "$TMP/s/a.json" "$samename" \
		'[(p["program"], p["unit"], p["pids"]) for p in progs] == [("'"$hold"' (another mount namespace)", "pose.service", [pid])]'
	check "the real program's row: its server and client, and nobody running the very same file from its own namespace (verified: same device and inode)" "$TMP/s/a.json" "$real" \
		'len(progs) == 1 and progs[0]["program"] == progs[0]["exe"] == "'"$hold"'" and progs[0]["exe_verified"] and '"$samename"' not in progs[0]["pids"] and '"$realfile"' in progs[0]["pids"] and progs[0]["pids_other_mount_namespace"] == ['"$realfile"'] and progs[0]["connections"] == 6'
	local row
	row=$(grep -aF -- "$target (another mount namespace) " "$TMP/s/a.txt")
	if [[ $row == *" pose.service "*" $target_pid "* ]] && ! grep -aqE "^${target//./\\.} +pose\.service" "$TMP/s/a.txt"; then
		ok "the text table marks it: $(echo "$row" | tr -s ' ')"
	else
		fail "text: $(grep -a -e "$target" -e hold "$TMP/s/a.txt")"
	fi
	expect_text "$TMP/s/a.txt" "the text says what the mark means" '^2 program\(s\) marked "\(another mount namespace\)" run a file that is not the one$'
	if grep -aqF "program=\"$target (another mount namespace)\",unit=\"pose.service\"" "$TMP/s/a.prom" &&
		! grep -aqF "program=\"$target\"" "$TMP/s/a.prom"; then
		ok "the Prometheus label is marked too, never program=\"$target\""
	else
		fail "prometheus: $(grep -a -e "$target" "$TMP/s/a.prom" | head -n 3)"
	fi
	if command -v promtool > /dev/null 2>&1; then
		promtool check metrics < "$TMP/s/a.prom" > "$TMP/lint" 2>&1 && ok "promtool accepts it" || fail "promtool: $(head -c 300 "$TMP/lint")"
	fi
	# From the host, every process of the scene is in another mount
	# namespace (unshare --mount-proc made one): the real file is still
	# verified, as a sandboxed service's (PrivateTmp=) would be.
	audit_json "$TMP/h.json" || return
	"$PY" - "$TMP/h.json" "${CG#"$CGROOT"}/pose.service" "$hold" "$target" <<'PYEOF' > "$TMP/h.out" 2>&1 &&
import json, sys
doc = json.load(open(sys.argv[1]))
cg, hold, target = sys.argv[2:]
rows = sorted((p["program"], p["exe_verified"], len(p["pids"]), len(p["pids_other_mount_namespace"]), p["connections"])
              for p in doc["programs"] if p["cgroup"] == cg)
want = sorted([(hold, True, 6, 6, 6), (hold + " (another mount namespace)", False, 1, 1, 1),
               (target + " (another mount namespace)", False, 1, 1, 1)])
assert rows == want, (rows, want)
PYEOF
		ok "from the host: the real file verified in the scene's namespaces (one row, 6 processes), both copies marked" ||
		fail "from the host: $(tail -n 1 "$TMP/h.out")"
	touch "$TMP/s/done"
}

# A path that leads, in audit's mount namespace, into a FUSE mount that
# never answers (nobody's namespace hides it under a tmpfs of its own):
# audit resolves such a path with a bound, and marks the program.
test_posing_path_through_a_hung_fuse_mount() {
	need_root || return
	need_cmd unshare setpriv ss || return
	[ -c /dev/fuse ] || { skip "no /dev/fuse"; return; }
	mkdir "$TMP/s"
	# what nobody runs, and the mount point it covers, are in $PUB, not
	# in the checkout or a directory nobody cannot enter
	public_copy "$ROOT/tests/tcphold" > "$TMP/why" ||
		{ fail "the scene did not get ready: $(cat "$TMP/why")"; return; }
	local f=$PUB/f
	mkdir -m 755 "$f"
	# bounds: 60 s each for the mount, the listener, the connection, audit
	env OUT="$TMP/s" K="$K" HOLD="$PUB/tcphold" F="$f" PY="$PY" HA="$HA" \
		timeout -k 5 300 unshare -pfn --mount-proc --kill-child bash -c "$SCENE_LIB"'
ip link set lo up || exit 3
"$PY" "$HA" hungfuse "$OUT" "$F" > "$OUT/fuse.log" 2>&1 &
wait_for 60 test -e "$OUT/ready" ||
	{ echo "no FUSE mount within 60 s: $(cat "$OUT/fuse.log")" > "$OUT/failed"; exit 1; }
"$HOLD" serve 5001 > "$OUT/serve.out" 2>&1 &
wait_for 60 listening 5001 ||
	{ echo "no listener on 5001 within 60 s: $(cat "$OUT/serve.out")" > "$OUT/failed"; exit 1; }
setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urm sh -c \
	"mount -t tmpfs t \"\$0\" && cp \"\$1\" \"\$0/x\" && exec \"\$0/x\" connect 5001" "$F" "$HOLD" > "$OUT/c.out" 2>&1 &
echo $! > "$OUT/pid"
wait_for 60 grep -q ready "$OUT/c.out" ||
	{ echo "no connection within 60 s: $(cat "$OUT/c.out")" > "$OUT/failed"; exit 1; }
timeout 60 "$K" audit --json > "$OUT/a.json" 2> "$OUT/a.err"
echo $? > "$OUT/status"
' > "$TMP/log" 2>&1
	[ -e "$TMP/s/status" ] || { fail "the scene did not get ready: $(cat "$TMP/s/failed" "$TMP/log" 2> /dev/null | head -c 400)"; return; }
	local status pid
	status=$(cat "$TMP/s/status")
	pid=$(cat "$TMP/s/pid")
	if [ "$status" = 0 ]; then ok "audit ended (status 0) though the path leads into a FUSE mount that never answers"; else
		fail "audit: status $status (124: it hung) $(head -c 300 "$TMP/s/a.err")"
		return
	fi
	check "the program is marked, not verified" "$TMP/s/a.json" "$pid" \
		'[(p["program"], p["exe_verified"]) for p in progs] == [("'"$f/x"' (another mount namespace)", False)]'
}

# audit in a mount namespace of its own with a private /tmp, as systemd
# runs kashim-audit.service (PrivateTmp=): a program started from the
# host's /tmp is the host's file and is named so, verified; nobody's copy
# bind-mounted over the same path in a namespace of its own is still
# marked.  The host here is a pid namespace whose PID 1 (the scene's
# shell) root may read, as systemd's.
test_audit_with_a_private_tmp() {
	need_root || return
	need_cmd unshare setpriv ss || return
	mkdir "$TMP/s"
	cp "$ROOT/tests/tcphold" "$TMP/evil" && cp "$ROOT/tests/tcphold" "$TMP/hold" ||
		{ fail "cannot copy tcphold"; return; }
	public_copy "$TMP/hold" "$TMP/evil" > "$TMP/why" ||
		{ fail "the scene did not get ready: $(cat "$TMP/why")"; return; }
	case $PUB in /tmp/*) ;; *) fail "the scene did not get ready: $PUB is not under /tmp (TMPDIR?)"; return ;; esac
	# bounds: 60 s each for the listener, two connections, audit
	env OUT="$TMP/s" K="$K" HOLD="$PUB/hold" EVIL="$PUB/evil" \
		timeout -k 5 300 unshare -pfn --mount-proc --kill-child bash -c "$SCENE_LIB"'
ip link set lo up || exit 3
"$HOLD" serve 5001 > "$OUT/serve.out" 2>&1 &
wait_for 60 listening 5001 ||
	{ echo "no listener on 5001 within 60 s: $(cat "$OUT/serve.out")" > "$OUT/failed"; exit 1; }
"$HOLD" connect 5001 > "$OUT/real.out" 2>&1 &
echo $! > "$OUT/real"
setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urm sh -c \
	"mount --bind \"\$1\" \"\$0\" && exec \"\$0\" connect 5001" "$HOLD" "$EVIL" > "$OUT/pose.out" 2>&1 &
echo $! > "$OUT/pose"
wait_for 60 grep -q ready "$OUT/real.out" && wait_for 60 grep -q ready "$OUT/pose.out" ||
	{ echo "no connections within 60 s: $(cat "$OUT/real.out" "$OUT/pose.out")" > "$OUT/failed"; exit 1; }
# kashim by descriptor: the checkout may itself be under the /tmp hidden
timeout 60 unshare -m --propagation private sh -c "mount -t tmpfs private /tmp && exec /proc/self/fd/9 audit --json" \
	9< "$K" > "$OUT/a.json" 2> "$OUT/a.err"
echo $? > "$OUT/status"
' > "$TMP/log" 2>&1
	[ -e "$TMP/s/status" ] || { fail "the scene did not get ready: $(cat "$TMP/s/failed" "$TMP/log" 2> /dev/null | head -c 400)"; return; }
	[ "$(cat "$TMP/s/status")" = 0 ] || { fail "audit: status $(cat "$TMP/s/status"): $(head -c 300 "$TMP/s/a.err")"; return; }
	check "the program started from the host's /tmp, read by audit with a private /tmp: $PUB/hold, verified, in the host's namespace" \
		"$TMP/s/a.json" "$(cat "$TMP/s/real")" \
		'[(p["program"], p["exe_verified"], pid in p["pids_other_mount_namespace"]) for p in progs] == [("'"$PUB/hold"'", True, False)]'
	check "nobody's copy mounted over that path in its own namespace is still marked" \
		"$TMP/s/a.json" "$(cat "$TMP/s/pose")" \
		'[(p["program"], p["exe_verified"], pid in p["pids_other_mount_namespace"]) for p in progs] == [("'"$PUB/hold"' (another mount namespace)", False, True)]'
}

# A process whose main thread has exited (pthread_exit in main) while
# another thread runs: /proc/PID/fd lists nothing and /proc/PID/exe reads
# nothing, but its threads hold its connections.  Any user can make one.
# audit must show its row and --max-bound must name it; inspect reads it.
main_thread_exited() {
	grep -q '^State:.*Z' "/proc/$1/status" 2> /dev/null && [ "$(ls "/proc/$1/task" | grep -c .)" -ge 2 ]
}
test_process_whose_main_thread_exited() {
	need_cgroup || return
	trap trap_cleanup EXIT
	mkdir "$TMP/m" "$CG/mainexit"
	in_cgroup "$CG/mainexit" "$PY" "$HA" mainexit "$TMP/m"
	wait_file "$TMP/m/ready" "the program that ends its main thread" "$TMP/bg.$BG.log" || return
	local pid port exe
	read -r pid port < "$TMP/m/ready"
	if ! wait_for 60 main_thread_exited "$pid"; then
		fail "the scene did not get ready: pid $pid's main thread did not exit within 60 s: $(grep -E '^(State|Threads)' "/proc/$pid/status" | tr '\n' ' ')"
		return
	fi
	ok "pid $pid: main thread exited, $(ls "/proc/$pid/task" | grep -c .) task(s), /proc/$pid/fd lists $(ls "/proc/$pid/fd" | grep -c .) descriptor(s)"
	if [ "$(printf '6.9\n%s\n' "$(uname -r)" | sort -V | head -n 1)" != 6.9 ]; then
		# no thread pidfd before Linux 6.9: unreadable, and said so
		expect_status 1 "inspect on Linux $(uname -r), without thread pidfds" "$K" inspect "$pid"
		expect_text "$TMP/err" "says the kernel cannot" "^kashim inspect: cannot read the sockets of pid $pid: Operation not supported"
		return
	fi
	exe=$(readlink -f "$PY")
	audit_json "$TMP/m.json" || return
	check "audit shows its row: the listener, both connections, the one with its own keepalive bounded at 45 s idle, the other never; the exe read through a live thread" \
		"$TMP/m.json" "$pid" \
		'[(p["exe"], p["exe_verified"], p["pids"], p["connections"], p["keepalive"], p["listeners"]) for p in progs] == [("'"$exe"'", True, [pid], 2, 1, 1)] and sorted(s["idle_bound_s"] or 1e9 for s in socks) == [45, 1e9]'
	"$K" audit --max-bound 1m > /dev/null 2> "$TMP/m.err"
	expect_text "$TMP/m.err" "audit --max-bound 1m names it" \
		"^kashim audit: $(re_quote "$exe") \($(re_quote "${CG#"$CGROOT"}")/mainexit, pid $pid\): 2 connection\(s\) over --max-bound 1m: worst case idle never, busy "
	expect_status 0 "inspect reads it" "$K" inspect "$pid"
	if [ "$(grep -cE '^[0-9]+ +(LISTEN|ESTABLISHED) ' "$TMP/out")" = 3 ] &&
		grep -qE "^[0-9]+ +ESTABLISHED +127\.0\.0\.1:$port +.* on +30s +5s +3 " "$TMP/out"; then
		ok "inspect: its 3 sockets, the client's keepalive as set (30s, 5s, 3)"
	else
		fail "inspect: $(cat "$TMP/out" "$TMP/err")"
	fi
}

# The same, with threads that each start the next and exit, so that the
# thread a read goes through may exit under it (300 more descriptors make
# the read long): the read goes on through another, never a part of the
# process's connections, or none, shown as all.  Before, 1 read in 2 here
# showed no connection.
test_process_whose_threads_replace_each_other() {
	need_cgroup || return
	trap trap_cleanup EXIT
	mkdir "$TMP/m" "$CG/churn"
	in_cgroup "$CG/churn" "$PY" "$HA" mainexit "$TMP/m" churn
	wait_file "$TMP/m/ready" "the program whose threads replace each other" "$TMP/bg.$BG.log" || return
	local pid port i whole=0 rows=0
	read -r pid port < "$TMP/m/ready"
	wait_for 60 main_thread_exited "$pid" ||
		{ fail "the scene did not get ready: pid $pid's main thread did not exit within 60 s"; return; }
	if [ "$(printf '6.9\n%s\n' "$(uname -r)" | sort -V | head -n 1)" != 6.9 ]; then
		ok "Linux $(uname -r) has no thread pidfd: test_process_whose_main_thread_exited checks what is said"
		return
	fi
	# 300 reads: a thread that was exiting (its descriptors dropped,
	# /proc not yet saying so) made 1 read in some 300 show a part of
	# the process, or "(no TCP sockets)", as whole.
	for i in $(seq 300); do
		"$K" inspect "$pid" > "$TMP/i" 2>&1 && [ "$(grep -c ' ESTABLISHED ' "$TMP/i")" = 2 ] && whole=$((whole + 1))
		[ "$whole" = "$i" ] || { cp "$TMP/i" "$TMP/i.bad"; break; }
	done
	[ "$whole" = 300 ] && ok "inspect, 300 times: both connections each time" ||
		fail "inspect read both connections $whole times, then not: $(head -c 300 "$TMP/i.bad" | tr '\n' ' ')"
	for i in 1 2 3; do
		audit_json "$TMP/c.json" || return
		pyq "$TMP/c.json" "$pid" '[(p["connections"], p["keepalive"]) for p in progs] == [(2, 1)]' > "$TMP/c.out" && rows=$((rows + 1))
	done
	[ "$rows" = 3 ] && ok "audit, 3 times: its row with both connections each time" ||
		fail "audit showed its row whole $rows times in 3: $(cat "$TMP/c.out")"
}

test_doctor_says_what_the_cgroup_mode_misses() {
	expect_status 1 "doctor on a static program" "$K" doctor "$ROOT/tests/tcphold"
	expect_text "$TMP/out" "it says listeners created elsewhere keep their creator's cgroup" "keeps its creator's cgroup"
}

run_tests
