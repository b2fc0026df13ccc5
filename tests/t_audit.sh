# SPDX-License-Identifier: MIT
# kashim audit against real processes whose options are known (covered by
# kashim, setting their own, none), each in its own cgroup, inside fresh
# pid and network namespaces (tests/helpers/audit_scene.sh); and kashim
# inspect on processes that exit mid-read and on pids that are no process.
. "$(dirname "$0")/lib.sh"

K=$ROOT/kashim
EXITMID=$ROOT/tests/libexitmid.so
CHECK=$HELPERS/auditcheck.py

# check WHAT ARGS...: auditcheck.py ARGS passes.
check() {
	local what=$1 err
	shift
	if err=$("$PY" "$CHECK" "$@" 2>&1); then ok "$what"; else fail "$what: $(echo "$err" | tail -n 3)"; fi
}

# scene_status NAME WANT WHAT: the scene's command NAME exited with WANT.
scene_status() {
	local got
	got=$(cat "$OUT/$1.status" 2> /dev/null)
	if [ "$got" = "$2" ]; then ok "$3 (status $got)"; else
		fail "$3: status ${got:-none}, want $2; stderr: $(head -c 300 "$OUT/$1.err" 2> /dev/null)"
	fi
}

test_help_and_usage() {
	expect_status 0 "audit --help" "$K" audit --help
	expect_text "$TMP/out" "a usage text on stdout" '^usage: kashim audit \[--json \| --prometheus\] \[--max-bound D\] \[--output FILE\]$'
	expect_status 0 "kashim --help" "$K" --help
	expect_text "$TMP/out" "lists audit" '^  audit \[--json\|--prometheus\] '
	expect_status 2 "audit --frobnicate" "$K" audit --frobnicate
	expect_status 2 "audit --json --prometheus" "$K" audit --json --prometheus
	expect_text "$TMP/err" "says they are exclusive" '^kashim audit: --json and --prometheus are exclusive$'
	expect_status 2 "audit --max-bound with no value" "$K" audit --max-bound
	expect_status 2 "audit --max-bound auto" "$K" audit --max-bound auto
	expect_status 2 "audit --output with no value" "$K" audit --output
	expect_status 1 "audit --output in a directory that does not exist" "$K" audit --output "$TMP/none/kashim.prom"
	expect_text "$TMP/err" "says why" "^kashim: cannot make a temporary file beside $TMP/none/kashim.prom: No such file or directory$"
	expect_status 1 "audit --output naming a directory" "$K" audit --output "$TMP/"
	expect_text "$TMP/err" "says it is not a file name" "^kashim: cannot write $TMP/: not a file name$"
	[ -z "$(ls -A "$TMP" | grep -v '^out$\|^err$')" ] && ok "--output that fails leaves no file" || fail "left: $(ls -A "$TMP")"
}

# --output NAME must never replace what is not a regular file: root's
# `--output /dev/null` once put a file in the place of the host's
# /dev/null.  Each refusal is one line, status 1, the thing untouched and
# no temporary file left; a regular file, or none, is written.
# refused NAME WANT WHAT: --output NAME is refused with WANT (a regex).
refused() {
	local before
	before=$(stat -c '%F %i %t:%T' "$1" 2> /dev/null)
	expect_status 1 "--output $3" "$K" audit --prometheus --output "$1"
	if [ "$(grep -c . "$TMP/err")" = 1 ] && grep -qE -- "$2" "$TMP/err" &&
		[ "$(stat -c '%F %i %t:%T' "$1" 2> /dev/null)" = "$before" ] &&
		! ls -A "$(dirname "$1")" | grep -q '^\.'; then
		ok "--output $3: refused in one line, left as it was ($before), no temporary file"
	else
		fail "--output $3: now $(stat -c '%F %i %t:%T' "$1" 2>&1), was $before; stderr: $(head -c 300 "$TMP/err"); left: $(ls -A "$(dirname "$1")" | tr '\n' ' ')"
	fi
}
test_output_replaces_only_a_regular_file() {
	local d=$TMP/o
	mkdir "$d" && echo old > "$d/reg"
	mkfifo "$d/fifo"
	ln -s reg "$d/link-reg"
	mkdir "$d/dir"
	refused "$d/fifo" '^kashim: will not replace .*/fifo: it is a FIFO; only a regular file is replaced$' "naming a FIFO"
	refused "$d/link-reg" '^kashim: will not replace .*/link-reg: it is a symbolic link; only a regular file is replaced \(name the file itself, not a link to it\)$' \
		"naming a symbolic link to a regular file"
	[ "$(cat "$d/reg")" = old ] && ok "the file the link points to is untouched" || fail "it now holds: $(head -c 100 "$d/reg")"
	refused "$d/dir" '^kashim: will not replace .*/dir: it is a directory; only a regular file is replaced$' "naming a directory (no slash)"
	"$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$d/sock"
	refused "$d/sock" '^kashim: will not replace .*/sock: it is a socket; ' "naming a UNIX socket"
	if [ "$(id -u)" = 0 ]; then
		mknod "$d/null" c 1 3 && ln -s null "$d/link-null"
		refused "$d/null" '^kashim: will not replace .*/null: it is a character device; ' "naming a character device (a copy of /dev/null)"
		refused "$d/link-null" '^kashim: will not replace .*/link-null: it is a symbolic link; ' "naming a symbolic link to a device"
		# the very /dev/null, in a mount namespace of this test's own
		# with a /dev of its own: the host's is never at stake
		expect_status 1 "--output /dev/null" timeout 60 unshare -m --propagation private sh -c \
			'mount -t tmpfs t /dev && mknod /dev/null c 1 3 && "$0" audit --output /dev/null; s=$?; stat -c %F /dev/null; ls -A /dev; exit $s' "$K"
		expect_text "$TMP/err" "says it will not" '^kashim: will not replace /dev/null: it is a character device; only a regular file is replaced$'
		[ "$(cat "$TMP/out")" = "$(printf 'character special file\nnull')" ] &&
			ok "/dev/null is still the device, nothing beside it" || fail "/dev then: $(cat "$TMP/out" | tr '\n' ' ')"
	else
		skip "a device node needs root"
	fi
	expect_status 0 "--output naming a regular file" "$K" audit --prometheus --output "$d/reg"
	grep -q '^# TYPE kashim_audit_connections gauge$' "$d/reg" && ok "it was replaced" || fail "it holds: $(head -c 100 "$d/reg")"
	expect_status 0 "--output naming a new file" "$K" audit --prometheus --output "$d/new"
	[ -f "$d/new" ] && ok "it was made" || fail "no $d/new"
}

# A device put at the name after the first check and before the rename
# (here when the temporary file is flushed to disk: a preloaded fsync)
# is still not replaced.
test_output_checked_again_before_the_rename() {
	need_cmd cc || return
	local d=$TMP/r
	mkdir "$d"
	cc -shared -fPIC -o "$TMP/libswap.so" -x c - -ldl <<-'C' || { fail "cannot build the preload"; return; }
	#define _GNU_SOURCE
	#include <dlfcn.h>
	#include <stdlib.h>
	#include <sys/stat.h>
	#include <unistd.h>
	int fsync(int fd)
	{
		int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
		const char *swap = getenv("SWAP_TO_FIFO");
		if (swap) {
			unlink(swap);
			mkfifo(swap, 0644);
		}
		return real(fd);
	}
	C
	echo old > "$d/kashim.prom"
	expect_status 1 "a FIFO put in the file's place before the rename" \
		env LD_PRELOAD="$TMP/libswap.so" SWAP_TO_FIFO="$d/kashim.prom" "$K" audit --prometheus --output "$d/kashim.prom"
	if [ -p "$d/kashim.prom" ] && [ "$(ls -A "$d")" = kashim.prom ] &&
		grep -qx "kashim: will not replace $d/kashim.prom: it is a FIFO; only a regular file is replaced" "$TMP/err"; then
		ok "the FIFO is left, no temporary file, one line says why"
	else
		fail "$(stat -c %F "$d/kashim.prom"); left: $(ls -A "$d" | tr '\n' ' '); stderr: $(head -c 300 "$TMP/err")"
	fi
}

# Started with standard output (and input, error) closed, as a service
# manager or a careless script may: the file is still written whole.
test_output_with_stdio_closed() {
	local how status
	for how in '>&-' '<&- >&-' '<&- >&- 2>&-'; do
		rm -f "$TMP/c.prom"
		eval '"$K" audit --prometheus --output "$TMP/c.prom"' "$how" 2> "$TMP/c.err"
		status=$?
		if [ "$status" = 0 ] && grep -q '^# TYPE kashim_audit_connections gauge$' "$TMP/c.prom" 2> /dev/null && [ ! -s "$TMP/c.err" ] &&
			[ -z "$(ls -A "$TMP" | grep '^\.')" ]; then
			ok "--output with $how: status 0, the file written whole ($(wc -l < "$TMP/c.prom") lines), nothing on stderr"
		else
			fail "--output with $how: status $status; $(head -c 200 "$TMP/c.prom" 2>&1); stderr: $(head -c 200 "$TMP/c.err")"
		fi
	done
}

# The file replaced keeps its owner and permissions (an operator's 0640
# for node_exporter's group); a new one gets the umask's (0644 here).
test_output_keeps_the_files_owner_and_mode() {
	local d=$TMP/own
	mkdir -p "$d"
	echo old > "$d/k.prom"
	chown nobody:nogroup "$d/k.prom" && chmod 0640 "$d/k.prom"
	(umask 022 && "$K" audit --prometheus --output "$d/k.prom" && "$K" audit --prometheus --output "$d/new.prom") 2> "$TMP/err"
	if [ "$(stat -c '%a %U %G' "$d/k.prom")" = "640 nobody nogroup" ] && grep -q '^# TYPE' "$d/k.prom"; then
		ok "a file replaced keeps its owner and mode (640 nobody nogroup)"
	else
		fail "replaced: $(stat -c '%a %U %G' "$d/k.prom"); stderr: $(head -c 200 "$TMP/err")"
	fi
	if [ "$(stat -c '%a %U' "$d/new.prom")" = "644 root" ]; then ok "a new file gets the umask's mode (644)"; else fail "new: $(stat -c '%a %U' "$d/new.prom")"; fi
}

test_model_arithmetic() {
	check "worst-case arithmetic on hand-computed cases (tcp_model_timeout, backoff, keepalive with a user timeout)" model
}

# Runs the scene (COVER_WITH chooses how the covered program gets kashim)
# and checks every output.  With "private", the scene's programs come from
# a copy of the checkout's files in a 0700 directory, as for a newcomer
# whose clone sits in a private home: what runs as nobody must still get
# its files (from a copy in a directory nobody can read).
audit_scene_checks() {
	need_root || return
	need_cmd unshare setpriv ss || return
	local cgroot k=$K lib=$LIB peek=$PEEK exitmid=$EXITMID helpers=$HELPERS
	cgroot=$(cgroup2_root)
	[ -n "$cgroot" ] && [ -w "$cgroot" ] || { skip "no writable cgroup v2 mount"; return; }
	if [ "${1:-}" = private ]; then
		mkdir -m 700 "$TMP/private" "$TMP/private/helpers"
		cp "$K" "$LIB" "$PEEK" "$EXITMID" "$TMP/private/"
		cp "$HELPERS"/*.py "$HELPERS"/*.sh "$TMP/private/helpers/"
		k=$TMP/private/kashim lib=$TMP/private/${LIB##*/} peek=$TMP/private/sockpeek
		exitmid=$TMP/private/libexitmid.so helpers=$TMP/private/helpers
		if "${NOBODY[@]}" test -r "$helpers/hold.py"; then
			fail "the scene did not get ready: nobody can read $helpers/hold.py in a 0700 directory"
			return 1
		fi
	fi
	CG=""
	public_copy "$k" "$helpers/hold.py" > "$TMP/why" ||
		{ fail "the scene did not get ready: $(cat "$TMP/why")"; return 1; }
	OUT=$TMP/scene
	CG=$cgroot/kashim-audit-$$-$RANDOM
	mkdir -p "$OUT" "$CG"
	env OUT="$OUT" CG="$CG" K="$k" LIB="$lib" PY="$PY" HELPERS="$helpers" PEEK="$peek" \
		EXITMID="$exitmid" KENV="${KENV[*]}" RETRIES2=5 PUB="$PUB" \
		timeout -k 5 500 unshare -pfn --mount-proc --kill-child bash "$helpers/audit_scene.sh" \
		> "$OUT/scene.log" 2>&1 &
	local scene=$!
	BG_PIDS+=("$scene")
	wait_for 300 scene_at ready "$scene"
	if [ ! -e "$OUT/ready" ] || [ -e "$OUT/notready" ]; then
		scene_not_ready "$scene"
		return 1
	fi
	scene_status audit.txt 0 "audit"
	check "audit: one row per program and unit, worst first, listeners apart, exact figures" text "$OUT"
	scene_status audit.json 0 "audit --json"
	check "audit --json: every connection's options as sockpeek reads them, bounds recomputed, per program" \
		json "$OUT" "${CG#"$cgroot"}" 5
	scene_status audit.prom 0 "audit --prometheus"
	check "audit --prometheus: HELP and TYPE for every gauge, escaped labels, values, +Inf for never" prom "$OUT"
	if command -v promtool > /dev/null 2>&1; then
		if promtool check metrics < "$OUT/audit.prom" > "$TMP/lint" 2>&1; then
			ok "promtool check metrics accepts it"
		else
			fail "promtool: $(head -c 300 "$TMP/lint")"
		fi
	else
		skip "promtool is not installed (Debian: prometheus)"
	fi
	scene_status max2m_all 1 "--max-bound 2m with connections that never notice"
	expect_text "$OUT/max2m_all.err" "names the program over the bound" \
		'none\.service, pid [0-9]+\): 2 connection\(s\) over --max-bound 2m: worst case idle never, busy [0-9.]+s$'
	scene_status nobody 0 "audit as nobody"
	check "as nobody: its own process read, the other 5 counted as unreadable" nobody "$OUT"
	# From outside: the scene's network namespace has its own retries2.
	expect_status 0 "audit from the host (network namespaces entered)" "$K" audit --json
	cp "$TMP/out" "$TMP/host.json"
	"$PY" - "$TMP/host.json" "${CG#"$cgroot"}" <<'PYEOF' && ok "tcp_retries2 read in each process's own network namespace (5 there, not ours)" || fail "$(head -c 300 "$TMP/host.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
socks = [s for p in doc["programs"] if p["cgroup"].startswith(sys.argv[2] + "/") for s in p["sockets"]]
assert len(socks) == 8 and all(s["tcp_retries2"] == 5 for s in socks), socks
PYEOF
	touch "$OUT/done"
	wait_for 200 scene_at finished "$scene"
	if [ ! -e "$OUT/finished" ] || [ -e "$OUT/notready" ]; then
		scene_not_ready "$scene"
		return 1
	fi
	scene_status exitmid 0 "audit while a process exits mid-read"
	check "the exit is counted, the other processes are read" exitmid "$OUT"
	scene_status max2m_left 0 "--max-bound 2m once only covered connections are left"
	scene_status max70s_left 1 "--max-bound 70s: the covered 81 s is over it"
	scene_status max_bad 2 "--max-bound 5x"
	expect_text "$OUT/max_bad.err" "says the accepted forms" 'is not a duration; accepted: .*45s, 2m, 1h or 1500ms'
	wait "$scene" 2> /dev/null
	scene_cgroup_gone
	return 0
}

# scene_at STEP PID: the scene reached STEP, or ended (it then wrote
# notready, or died).
scene_at() { [ -e "$OUT/$1" ] || [ -e "$OUT/notready" ] || ! kill -0 "$2" 2> /dev/null; }

# scene_not_ready PID: one failure that says why, then the cleanup.
scene_not_ready() {
	local why
	if [ -e "$OUT/notready" ]; then
		why=$(cat "$OUT/notready")
	elif kill -0 "$1" 2> /dev/null; then
		why="no step after the bound; its log: $(tail -n 5 "$OUT/scene.log" | tr '\n' ' ')"
	else
		why="it ended; its log: $(tail -n 5 "$OUT/scene.log" | tr '\n' ' ')"
	fi
	fail "the scene did not get ready: $why"
	# timeout passes it on to unshare, whose --kill-child ends the pid
	# namespace and every program of the scene with it
	kill -TERM "$1" 2> /dev/null
	wait "$1" 2> /dev/null
	wait_for 30 rmdir_scene
	scene_cgroup_gone
}

rmdir_scene() { rmdir "$CG"/*/ "$CG" 2> /dev/null; [ ! -d "$CG" ]; }
scene_cgroup_gone() {
	[ -n "$CG" ] || return 0
	rmdir_scene
	if [ -d "$CG" ]; then fail "cgroup $CG left behind"; else ok "no cgroup left behind"; fi
}

# The busy bound against the kernel: a real connection, blackholed with
# data in flight, must end within the bound audit computed for it (at most
# 0.5 s late for timer slack, and not sooner than one RTO early: the
# tail-loss probe the bound allows for comes sooner on loopback).
test_busy_bound_against_a_blackholed_connection() {
	need_root || return
	need_cmd unshare tc ip ss || return
	local out measured bound rto
	out=$(timeout -k 5 60 unshare -n "$PY" "$HELPERS/audit_blackhole.py" "$K" "$HELPERS/hold.py" 2>&1)
	read -r _ measured bound rto <<< "$(echo "$out" | grep '^bound ')"
	if echo "$out" | grep -q '^notready: '; then
		fail "the scene did not get ready: $(echo "$out" | sed -n 's/^notready: //p')"
	elif [ -z "${bound:-}" ]; then
		fail "no measurement: $(echo "$out" | tail -n 3)"
	elif "$PY" -c "import sys; m, b, r = map(float, sys.argv[1:]); sys.exit(not b - r / 1000 - 0.35 <= m <= b + 0.5)" \
		"$measured" "$bound" "$rto"; then
		ok "blackholed with data in flight: the kernel gave up after ${measured} s; audit's bound ${bound} s (RTO ${rto} ms, tcp_retries2=3)"
	else
		fail "the kernel gave up after ${measured} s; audit's bound ${bound} s (RTO ${rto} ms)"
	fi
}

# The preload run's files come from a 0700 directory (see
# audit_scene_checks): it fails wherever the checkout is if anything run as
# nobody is read from the checkout.
test_audit_preload() {
	audit_scene_checks private
}

# The same scene with the covered program reached by kashim's cgroup mode
# (kashim attach on its unit's cgroup, the same settings, no preload):
# audit's figures must be the same.  The attachment goes with the cgroup.
test_audit_cgroup_mode() {
	export COVER_WITH=cover_cgroup AUDIT_COVER=cgroup # for auditcheck.py
	export COVER_WITH_DEF='cover_cgroup() {
		"$K" attach --idle 37 --interval 11 --count 4 "$1" > "$OUT/attach.out" 2> "$OUT/attach.err"
		echo $? > "$OUT/attach.status"
		COVER=()
	}'
	audit_scene_checks && scene_status attach 0 "kashim attach on the covered program's cgroup"
}

# A server holding N accepted connections; its pid in $BG.
server_with() {
	local port i
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	SERVER=$BG
	disown "$SERVER" # the test library kills it: no job notice
	wait_listen "$port" || return 1
	local targets=()
	for i in $(seq "$1"); do targets+=("127.0.0.1:$port"); done
	bg "$PY" "$HELPERS/hold.py" clients - - "${targets[@]}"
	wait_for 60 accepted "$SERVER" "$1"
}
# accepted PID N: PID holds N accepted connections.
accepted() { [ "$(peek "$1" | grep -c ESTABLISHED)" -ge "$2" ]; }

# issue 9: the process exits after 3 of its 7 sockets are read (the test
# library kills it right after the 3rd pidfd_getfd and waits for the exit).
test_inspect_process_exits_mid_read() {
	server_with 6 || { fail "the scene did not get ready: no server holding 6 connections within 60 s"; return; }
	expect_status 1 "inspect: the process exits mid-read" \
		env LD_PRELOAD="$EXITMID" EXITMID_PID="$SERVER" EXITMID_AFTER=3 "$K" inspect "$SERVER"
	expect_text "$TMP/err" "says it exited and that the table is partial" \
		"^kashim inspect: pid $SERVER exited while it was read; the 3 socket\(s\) shown are those read before$"
	if [ "$(grep -cE '^[0-9]+ +(LISTEN|ESTABLISHED) ' "$TMP/out")" -eq 3 ]; then
		ok "the 3 sockets read before the exit are shown"
	else
		fail "want 3 rows: $(cat "$TMP/out")"
	fi
	server_with 6 || { fail "the scene did not get ready: no server holding 6 connections within 60 s"; return; }
	expect_status 1 "inspect --json: the process exits mid-read" \
		env LD_PRELOAD="$EXITMID" EXITMID_PID="$SERVER" EXITMID_AFTER=2 "$K" inspect --json "$SERVER"
	"$PY" -c 'import json, sys; assert len(json.load(open(sys.argv[1]))) == 2' "$TMP/out" \
		&& ok "--json stays valid JSON with the 2 sockets read" || fail "$(cat "$TMP/out")"
}

second_task() { ls "/proc/$1/task" | grep -qvx "$1"; }

test_inspect_hostile_pids() {
	local p
	for p in 0 -1 +5 " 5" 5x 0x10 4194305 99999999999999999999 ""; do
		expect_status 2 "inspect \"$p\" is not a process id" "$K" inspect "$p"
	done
	# a zombie: exited, not reaped by its parent
	bg "$PY" -c 'import os, time
pid = os.fork()
if pid == 0:
    os._exit(0)
print(pid, flush=True)
time.sleep(60)'
	local zombie=""
	wait_for 60 test -s "$TMP/bg.$BG.log" && zombie=$(head -n 1 "$TMP/bg.$BG.log")
	if [ -z "$zombie" ] || ! wait_for 60 grep -q '^State:.*Z' "/proc/$zombie/status"; then
		fail "the scene did not get ready: no zombie within 60 s (child '${zombie}')"
		return
	fi
	expect_status 1 "inspect a zombie" "$K" inspect "$zombie"
	expect_text "$TMP/err" "says it has exited" "pid $zombie has exited \(a zombie"
	# a thread id is not a process id
	local tid
	tid=$(ls "/proc/$BG/task" | grep -vx "$BG" | head -n 1)
	if [ -z "$tid" ]; then
		bg "$PY" -c 'import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); time.sleep(60)'
		wait_for 60 second_task "$BG" && tid=$(ls "/proc/$BG/task" | grep -vx "$BG" | head -n 1)
		[ -n "$tid" ] || { fail "the scene did not get ready: no second thread in pid $BG within 60 s"; return; }
	fi
	expect_status 1 "inspect a thread id" "$K" inspect "$tid"
	expect_text "$TMP/err" "says it is a thread" "no process $tid \(a thread id"
	# a kernel thread, when this pid namespace shows any
	local kt
	kt=$("$PY" -c '
import glob
for f in glob.glob("/proc/[0-9]*/stat"):
    try:
        flags = int(open(f).read().rsplit(")", 1)[1].split()[6])
    except (OSError, IndexError, ValueError):
        continue
    if flags & 0x00200000:  # PF_KTHREAD
        print(f.split("/")[2])
        break')
	if [ -n "$kt" ]; then
		expect_status 1 "inspect a kernel thread" "$K" inspect "$kt"
		expect_text "$TMP/err" "says it is a kernel thread" "pid $kt is a kernel thread"
	else
		ok "no kernel thread visible in this pid namespace (nothing to inspect)"
	fi
}


# The evidence counters against a real dead peer (audit_counters.py): one
# connection under kashim (interval 1 s, count 3) whose peer vanishes (tc
# blackhole) moves its network namespace's TCPKeepAlive by 3 and
# TCPAbortOnTimeout by 1, as audit reads them from outside the namespace,
# in text, JSON and Prometheus alike.
test_counters_move_with_a_dead_peer() {
	need_root || return
	need_cmd unshare nsenter tc ip ss || return
	local out probes aborts
	out=$(timeout -k 5 150 unshare -n "$PY" "$HELPERS/audit_counters.py" "$K" "$LIB" \
		"$HELPERS/hold.py" "/proc/$$/ns/net" 2>&1)
	read -r _ probes aborts _ <<< "$(echo "$out" | grep '^moved ')"
	if echo "$out" | grep -q '^notready: '; then
		fail "the scene did not get ready: $(echo "$out" | sed -n 's/^notready: //p')"
	elif [ "${probes:-}" = 3 ] && [ "${aborts:-}" = 1 ]; then
		ok "a dead peer under kashim (count 3): TCPKeepAlive +3, TCPAbortOnTimeout +1, in text, JSON and Prometheus ($(echo "$out" | grep '^moved '))"
	else
		fail "want 3 probes and 1 abort: $(echo "$out" | tail -n 4 | tr '\n' ';')"
	fi
}

run_tests
