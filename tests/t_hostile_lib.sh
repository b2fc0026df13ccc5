# SPDX-License-Identifier: MIT
# The interposed calls under hostile conditions (issue 9): invalid pointers
# and values, small stacks, calls during the load, a closed or reused
# stderr, force mode after descriptor reuse, two copies preloaded.  Each
# check is made from outside (the program's own results, the kernel's view
# of its sockets, strace counts, what a peer reads), never from kashim's
# word.  C helpers: tests/hostile (the calls, and a seccomp sandbox to run
# a program in) and tests/libhostile.so (a constructor that makes sockets,
# and connections, on small threads and a small sigaltstack while kashim
# loads: each the program's own need, plus the kernel's minimum for a
# signal frame on this CPU (AT_MINSIGSTKSZ) for the sigaltstack, plus
# kashim's budget, KASHIM_STACK_BUDGET below).
. "$(dirname "$0")/lib.sh"

HOSTILE=$ROOT/tests/hostile
EARLY=$ROOT/tests/libhostile.so
# kashim's own stack, at most, in any interposed call after the load, debug
# on or off (docs/reliability.md, "Stack"); tests/hostile_early.c adds the
# same to its stacks.
KASHIM_STACK_BUDGET=1024
# The filters make every decision wait for connect() or accept().
MODES=("KASHIM_MODE=respect" "KASHIM_MODE=force" "KASHIM_ONLY=127.0.0.0/8"
	"KASHIM_ONLY=127.0.0.0/8 KASHIM_MODE=force")

test_invalid_calls_get_libcs_exact_answer() {
	local which mode
	for which in connect setsockopt accept; do
		"$HOSTILE" pointers "$which" > "$TMP/plain" 2>&1
		for mode in "${MODES[@]}"; do
			# shellcheck disable=SC2086 # MODE is words
			"${SHIM[@]}" $mode "$HOSTILE" pointers "$which" > "$TMP/out" 2> "$TMP/err"
			local rc=$?
			if [ "$rc" -ne 0 ]; then
				fail "$which, $mode: status $rc (a crash), after: $(tail -n 1 "$TMP/out")"
			elif ! diff <(grep -v '^state' "$TMP/plain") <(grep -v '^state' "$TMP/out") > "$TMP/diff"; then
				fail "$which, $mode: not libc's answers: $(grep '^[<>]' "$TMP/diff" | head -4 | tr '\n' ';')"
			else
				ok "$which, $mode: $(grep -vc '^state\|^alive' "$TMP/out") invalid calls, each with libc's rc and errno"
			fi
		done
	done
}

test_invalid_calls_change_nothing() {
	local mode want
	for mode in "${MODES[@]}"; do
		want="keepalive=1 idle=37 interval=11 count=4 user_timeout=81000"
		# With filters, a socket that never connected is not kashim's.
		[[ $mode == *ONLY* ]] && want="keepalive=0 idle=7200 interval=75 count=9 user_timeout=0"
		# shellcheck disable=SC2086
		"${SHIM[@]}" $mode "$HOSTILE" pointers setsockopt > "$TMP/out" 2>&1
		if grep -q "^state: after the invalid calls $want\$" "$TMP/out"; then
			ok "$mode: the socket still holds $want"
		else
			fail "$mode: $(grep '^state' "$TMP/out" || tail -n 1 "$TMP/out")"
		fi
	done
}

test_force_mode_after_descriptor_reuse() {
	"${SHIM[@]}" KASHIM_MODE=force "$HOSTILE" reuse > "$TMP/out" 2>&1
	expect_text "$TMP/out" "a number kashim configured, reused by dup2: the program's own calls apply" \
		'^state: reused keepalive=0 idle=100 interval=75 count=5 '
	expect_text "$TMP/out" "a number taken by a socket made elsewhere: the program's call applies" \
		'^state: taken keepalive=0 idle=7200 interval=50 '
	expect_text "$TMP/out" "kashim's own socket in force mode: kashim's values stand" \
		"^state: kashim's keepalive=1 idle=37 interval=11 count=4 user_timeout=81000"
	expect_text "$TMP/out" "a dup() of kashim's socket: kashim's values stand" \
		"^state: dup of kashim's keepalive=1 idle=37 interval=11 count=4 user_timeout=81000"
	if grep -q 'rc=-1' "$TMP/out"; then
		fail "a valid call failed: $(grep 'rc=-1' "$TMP/out" | head -2)"
	else
		ok "every valid call answered with success"
	fi
}

# sandboxed WHAT CMD...: CMD runs tests/helpers/filtered_connects.py; the
# connections to 127.0.0.1 and ::1 (blocking and not; to ::1 also with the
# 24-byte sockaddr_in6) hold kashim's values, those to 127.0.0.2 none, an
# unmapped, a NULL and a half-unmapped address get EFAULT, the program
# lives (139: SIGSEGV, kashim read a pointer the kernel refuses).
sandboxed() {
	local what=$1 rc covered excluded faults
	shift
	timeout 60 "$@" > "$TMP/out" 2> "$TMP/err"
	rc=$?
	covered=$(grep -c '^covered-.* keepalive=1 idle=37 ' "$TMP/out")
	excluded=$(grep -c '^excluded-.* keepalive=0 idle=7200 user_timeout=0$' "$TMP/out")
	faults=$(grep -c '^badpointer .* rc=-1 errno=EFAULT$' "$TMP/out")
	if [ "$rc" -ne 0 ] || ! grep -q '^done$' "$TMP/out"; then
		fail "$what: status $rc (159: SIGSYS, 139: SIGSEGV), after: $(tail -n 1 "$TMP/out") $(head -c 200 "$TMP/err")"
	elif [ "$covered" -ne 6 ] || [ "$excluded" -ne 2 ]; then
		fail "$what: $covered of 6 covered connections configured, $excluded of 2 excluded left alone: $(grep -e -blocking -e -nonblocking "$TMP/out" | tr '\n' ';')"
	elif [ "$faults" -ne 3 ]; then
		fail "$what: $(grep badpointer "$TMP/out" | tr '\n' ';')"
	else
		ok "$what: the program lives, 6 covered connections configured, 2 excluded left alone, 3 bad addresses get EFAULT"
	fi
}

# Under a seccomp policy that denies the process-inspection calls
# (process_vm_readv among them), with EPERM or a kill action: 46f1555 read
# the address through process_vm_readv (EPERM: nothing covered; kill or
# trap: SIGSYS at the first connect()).
test_filters_in_a_seccomp_sandbox() {
	local filter action
	for filter in "KASHIM_ONLY=127.0.0.1,::1" "KASHIM_SKIP=127.0.0.2"; do
		for action in errno kill killthread trap; do
			# shellcheck disable=SC2086 # filter is one word
			sandboxed "$filter, sandbox denying with $action before exec" \
				"${SHIM[@]}" $filter "$HOSTILE" sandbox "$action" "$PY" "$HELPERS/filtered_connects.py"
		done
	done
	# A program that sandboxes itself after kashim loaded.
	for action in errno kill trap; do
		sandboxed "KASHIM_ONLY, the program installs the filter itself ($action) after the load" \
			"${SHIM[@]}" KASHIM_ONLY=127.0.0.1,::1 "$PY" "$HELPERS/filtered_connects.py" self "$action"
	done
	# Where the address check does not answer as the kernel does (checked
	# at load), connect() is judged after the call, from the kernel's copy.
	for action in emulated sigprocmask-einval sigprocmask-eperm; do
		sandboxed "KASHIM_ONLY, a filter from before exec answering rt_sigprocmask ($action)" \
			"${SHIM[@]}" KASHIM_ONLY=127.0.0.1,::1 KASHIM_DEBUG=1 "$HOSTILE" sandbox "$action" \
			"$PY" "$HELPERS/filtered_connects.py"
		expect_text "$TMP/err" "... and KASHIM_DEBUG says so at load" \
			'loaded: .*; filters judged after connect\(\)$'
	done
	# ... and where it stops doing so after the load: each connect() checks
	# the answer against a kernel address that must fault (a0b9121 trusted
	# an EINVAL for any address and read it: SIGSEGV at a NULL address; took
	# EPERM for "unreadable": no connection covered).
	for action in einval eperm efault enosys; do
		sandboxed "KASHIM_ONLY, the program's own filter answers rt_sigprocmask with ${action^^} after the load" \
			"${SHIM[@]}" KASHIM_ONLY=127.0.0.1,::1 "$PY" "$HELPERS/filtered_connects.py" \
			self "sigprocmask-$action"
	done
	sandboxed "KASHIM_SKIP=127.0.0.2, the same with EINVAL" \
		"${SHIM[@]}" KASHIM_SKIP=127.0.0.2 "$PY" "$HELPERS/filtered_connects.py" self sigprocmask-einval
}

# A thread maps and unmaps the page holding the address while another
# connect()s with it, 3 s: a non-blocking socket is judged after the call,
# from the kernel's copy, so kashim never reads the pointer (a0b9121 read
# it between its check and the call: SIGSEGV).  A blocking socket keeps
# that window (docs/limits.md), so that the user timeout bounds the
# handshake; it is not tried here.
test_filters_race_with_munmap() {
	local filter
	for filter in KASHIM_ONLY=127.0.0.0/8 KASHIM_SKIP=127.0.0.2; do
		timeout 60 "${SHIM[@]}" "$filter" "$HOSTILE" race nonblocking 3 > "$TMP/out" 2>&1
		local rc=$? line
		line=$(grep '^race' "$TMP/out")
		if [ "$rc" -eq 0 ] && [[ $line =~ ([0-9]+)\ EFAULT,\ ([0-9]+)\ other ]] &&
			[ "${BASH_REMATCH[1]}" -gt 0 ] && [ "${BASH_REMATCH[2]}" -gt 0 ]; then
			ok "$filter, non-blocking: the program lives: $line"
		else
			fail "$filter, non-blocking: status $rc (139: SIGSEGV), '${line:-no result}'"
		fi
	done
}

# The cost of the address check, counted with strace.  With filters: two
# at load; per blocking connect(), one fcntl(F_GETFL), one refused
# rt_sigprocmask for the address (two when it crosses a 4 KiB boundary)
# and one for the kernel address that must fault; per non-blocking one,
# the fcntl and, after the call, one getsockopt(SO_PEERNAME) (IPv4); no
# process_vm_readv.  Without filters: none of these.
test_filters_cost_one_probe_per_connect() {
	need_cmd strace || return
	local script='
import socket
l = socket.create_server(("127.0.0.1", 0))
x = socket.create_server(("127.0.0.2", 0))
keep = [socket.create_connection(l.getsockname()) for i in range(3)]
keep.append(socket.create_connection(x.getsockname()))
nb = socket.socket()
nb.setblocking(False)
nb.connect_ex(l.getsockname())'
	local filter refused faulted readv getfl peer
	for filter in KASHIM_ONLY=127.0.0.1 KASHIM_MODE=respect; do
		strace -f -qq -o "$TMP/trace" -e trace=rt_sigprocmask,process_vm_readv,fcntl,getsockopt \
			"${SHIM[@]}" "$filter" "$PY" -c "$script" > "$TMP/out" 2>&1
		refused=$(grep -c 'rt_sigprocmask(0x6b61 .* = -1 EINVAL' "$TMP/trace")
		faulted=$(grep -c 'rt_sigprocmask(0x6b61 .* = -1 EFAULT' "$TMP/trace")
		readv=$(grep -c 'process_vm_readv(' "$TMP/trace")
		getfl=$(grep -c 'fcntl([0-9]*, F_GETFL) *= 0x[0-9a-f]* (flags O_RDWR' "$TMP/trace")
		peer=$(grep -c 'SO_PEERNAME' "$TMP/trace")
		if [ "$filter" = KASHIM_MODE=respect ]; then
			if [ "$((refused + faulted + readv + getfl + peer))" -eq 0 ]; then
				ok "5 connect() without filters: no address check, no fcntl, no SO_PEERNAME"
			else
				fail "without filters: $refused+$faulted checks, $getfl fcntl, $peer SO_PEERNAME, want none"
			fi
		elif [ "$readv" -eq 0 ] && [ "$faulted" -eq 5 ] && [ "$refused" -ge 5 ] &&
			[ "$refused" -le 9 ] && [ "$getfl" -eq 5 ] && [ "$peer" -eq 1 ]; then
			ok "4 blocking, 1 non-blocking connect() with KASHIM_ONLY: $((refused + faulted)) address checks (2 at load), 5 fcntl, 1 SO_PEERNAME, no process_vm_readv"
		else
			fail "$refused refused and $faulted faulted rt_sigprocmask, $getfl fcntl, $peer SO_PEERNAME, $readv process_vm_readv (want 5 to 9, 5, 5, 1, 0)"
		fi
	done
}

# The options are on the socket before the SYN, sandbox or not: a blocking
# connect() to a peer that never answers ends at the user timeout (2 s),
# not at the kernel's SYN retries (about 130 s).  A non-blocking one,
# judged after the call (its options set while the SYN is in flight),
# ends at the same bound: the kernel counts the user timeout from the SYN.
test_filters_bound_the_handshake_in_a_sandbox() {
	need_root || return
	need_cmd unshare tc || return
	timeout 60 unshare -n sh -c 'ip link set lo up && tc qdisc add dev lo root blackhole && exec "$@"' sh \
		"${SHIM[@]}" KASHIM_ONLY=127.0.0.1 KASHIM_USER_TIMEOUT=2000ms "$HOSTILE" sandbox errno "$PY" -c '
import errno, select, socket, time
for how in ("blocking", "non-blocking"):
    s = socket.socket()
    t = time.monotonic()
    try:
        if how == "blocking":
            s.connect(("127.0.0.1", 9))
        else:
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", 9))
            select.select([], [s], [], 25)
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e:
                raise OSError(e, "")
        r = "connected"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    print("handshake", how, r, "after %.0f s" % (time.monotonic() - t), flush=True)' > "$TMP/out" 2>&1
	local rc=$? how line
	for how in blocking non-blocking; do
		line=$(grep "^handshake $how " "$TMP/out")
		if [[ $line =~ \ ETIMEDOUT\ after\ ([0-9]+)\ s$ ]] && [ "${BASH_REMATCH[1]}" -le 10 ]; then
			ok "sandboxed, KASHIM_ONLY, a $how connect() to a silent peer: $line (KASHIM_USER_TIMEOUT=2000ms)"
		else
			fail "$how: status $rc, '${line:-no result}': the user timeout did not bound the handshake"
		fi
	done
}

# closed_2 CMD...: CMD started with fd 2 closed.
closed_2() { bash -c 'exec 2>&-; exec "$@"' closed_2 "$@"; }

test_stderr_closed_at_start() {
	# The first socket becomes fd 2; its peer must read nothing of kashim.
	expect_status 0 "fd 2 closed, a socket takes it: no SIGPIPE" \
		closed_2 env LD_PRELOAD="$LIB" KASHIM_DEBUG=1 "$HOSTILE" stderr
	expect_text "$TMP/out" "... and the peer reads no debug line" '^peer read 0 bytes$'
	expect_status 0 "the same with SIGPIPE ignored" \
		closed_2 env LD_PRELOAD="$LIB" KASHIM_DEBUG=1 "$HOSTILE" stderr ignore
	expect_text "$TMP/out" "... and the peer reads no debug line" '^peer read 0 bytes$'
}

test_stderr_reused_by_a_data_file() {
	env LD_PRELOAD="$LIB" KASHIM_DEBUG=1 "$HOSTILE" stderr "$TMP/data" > "$TMP/out" 2> "$TMP/err"
	if [ -f "$TMP/data" ] && [ ! -s "$TMP/data" ] && grep -q 'loaded:' "$TMP/err"; then
		ok "fd 2 closed after load and a data file opened: the file stays empty, the load line went to stderr"
	else
		fail "data file has $(wc -c < "$TMP/data" 2> /dev/null) bytes: $(head -c 200 "$TMP/data" 2> /dev/null)"
	fi
}

test_stderr_a_pipe_without_reader() {
	"$PY" - "$LIB" "$HOSTILE" > "$TMP/out" 2>&1 << 'EOF'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run([sys.argv[2], "debuglines"], stderr=w, stdout=subprocess.PIPE, timeout=30,
                   env=dict(os.environ, LD_PRELOAD=sys.argv[1], KASHIM_DEBUG="1"))
print("status", p.returncode, p.stdout.decode().strip())
EOF
	expect_text "$TMP/out" "stderr a pipe nobody reads, KASHIM_DEBUG=1: no SIGPIPE, none left pending" \
		'^status 0 alive, SIGPIPE not pending$'
}

# two_copies WHAT PRELOAD: one set of messages and 5 setsockopt per socket.
two_copies() {
	env LD_PRELOAD="$2" KASHIM_DEBUG=1 KASHIM_IDLE=x "$HOSTILE" debuglines > /dev/null 2> "$TMP/err"
	local bad loaded set
	bad=$(grep -c 'KASHIM_IDLE="x" ignored' "$TMP/err")
	loaded=$(grep -c 'loaded:' "$TMP/err")
	set=$(grep -c 'keepalive set' "$TMP/err")
	if [ "$bad" -eq 1 ] && [ "$loaded" -eq 1 ] && [ "$set" -eq 3 ]; then
		ok "$1: one message, one load line, one line per socket"
	else
		fail "$1: $bad bad-value, $loaded load, $set per-socket lines (want 1, 1, 3)"
	fi
	if command -v strace > /dev/null; then
		strace -f -qq -o "$TMP/trace" -e trace=setsockopt env LD_PRELOAD="$2" "$HOSTILE" debuglines > /dev/null 2>&1
		set=$(grep -c 'setsockopt(' "$TMP/trace")
		if [ "$set" -eq 15 ]; then ok "$1: 5 setsockopt per socket (strace)"; else fail "$1: $set setsockopt for 3 sockets, want 15"; fi
	fi
}

test_two_copies_preloaded() {
	mkdir -p "$TMP/b"
	cp "$LIB" "$TMP/b/libkashim.so"
	ln -s "$LIB" "$TMP/link.so"
	two_copies "two files" "$LIB $TMP/b/libkashim.so"
	two_copies "two files, the other order" "$TMP/b/libkashim.so:$LIB"
	two_copies "one file by a symbolic link too" "$LIB:$TMP/link.so"
}

# big_config: ~64 KiB, so that the load takes a while.
big_config() {
	"$PY" - "$TMP/big.conf" << 'EOF'
import sys
lines = ["# made large so that the load is slow", "idle = 37", "interval = 11", "count = 4"]
i = 0
while sum(len(l) + 1 for l in lines) < 64000:
    lines += ["[program nomatch%d*]" % i, "idle = %d" % (100 + i % 1000)]
    i += 1
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
EOF
}

# early_run LOADER ENV...: the program under libhostile.so, whose constructor
# runs before kashim's; its report in $TMP/report.
# The scene is ready when a thread made a socket while kashim loaded
# (kept > 0); on a loaded machine the threads may not run before the load
# ends, so the run is made again, up to 8 times, and a scene that never
# formed says so rather than failing an assertion on nothing.
# PRELOAD: instead of "$LIB:$EARLY" (the program without kashim: $EARLY).
early_run() {
	local loader=$1 try
	shift
	for try in 1 2 3 4 5 6 7 8; do
		rm -f "$TMP/report"
		timeout 120 env LD_PRELOAD="${PRELOAD:-$LIB:$EARLY}" HOSTILE_REPORT="$TMP/report" \
			HOSTILE_LOADER="$loader" HOSTILE_KASHIM_BUDGET="$KASHIM_STACK_BUDGET" \
			"$@" "$HOSTILE" debuglines > "$TMP/out" 2> "$TMP/err"
		rc=$?
		[ "$rc" -ne 0 ] && return
		grep -q ' kept=0 ' "$TMP/report" 2> /dev/null || return
	done
	scene_not_ready=1
}

# report_ok WHAT IDLE: the program lived, every socket kept from the load
# window holds kashim's idle, errno never changed, the handler ran.
report_ok() {
	local r
	r=$(cat "$TMP/report" 2> /dev/null)
	if [ "$rc" -ne 0 ]; then
		fail "$1: status $rc (a crash): $(head -c 200 "$TMP/err")"
	elif [ "${scene_not_ready:-0}" = 1 ]; then
		scene_not_ready=0
		fail "$1: the scene did not get ready: in 8 runs no thread made a socket while kashim loaded ('$r')"
	elif [[ ! $r =~ kept=([0-9]+)\ configured=([0-9]+)\ errno_changed=0\ signals=([0-9]+)\ in_load=([0-9]+) ]]; then
		fail "$1: report '$r'"
	elif [ "${BASH_REMATCH[1]}" -eq 0 ] || [ "${BASH_REMATCH[1]}" -ne "${BASH_REMATCH[2]}" ] ||
		[ "${BASH_REMATCH[3]}" -lt 100 ]; then
		fail "$1: report '$r' (every kept socket must be configured)"
	else
		ok "$1: ${r%% minsigstksz=*}$(stacks_said "$r")"
	fi
}

# stacks_said REPORT: the stacks the run had, and the CPU's minimum.
stacks_said() {
	[[ $1 =~ minsigstksz=([0-9]+)\ alt_stack=([0-9]+)\ alt_used=([0-9]+)\ thread_stack=([0-9]+)\ thread_used=([0-9]+) ]] || return
	local m=("${BASH_REMATCH[@]}")
	if [ "${m[4]}" -eq 0 ]; then
		echo " (AT_MINSIGSTKSZ ${m[1]}; default stacks)"
	else
		echo " (AT_MINSIGSTKSZ ${m[1]}: a ${m[2]}-byte sigaltstack, ${m[3]} used; ${m[4]}-byte threads, ${m[5]} used)"
	fi
}

# used_of REPORT: "ALT THREAD", how deep the run wrote its stacks.
used_of() {
	[[ $1 =~ alt_used=([0-9]+)\ thread_stack=[0-9]+\ thread_used=([0-9]+) ]] &&
		echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}

# kashim's share of the stacks, measured: the same program (its signal
# storm, its small threads) without kashim and with it, each stack painted
# and its high-water mark read; the difference is what kashim's frames
# (and the libc calls it adds) took, debug off and on, and must be within
# kashim's budget.  A run that cannot fit its stack crashes instead
# (a guard page below each).
test_stack_measured() {
	big_config
	local mode r base with
	for mode in "KASHIM_MODE=respect" "KASHIM_MODE=force KASHIM_DEBUG=1" \
		"KASHIM_ONLY=127.0.0.1 KASHIM_MODE=force KASHIM_DEBUG=1 HOSTILE_CONNECT=busy"; do
		# shellcheck disable=SC2086 # mode is words
		PRELOAD=$EARLY early_run main KASHIM_CONFIG="$TMP/big.conf" HOSTILE_IDLE=37 $mode
		base=$(used_of "$(cat "$TMP/report" 2> /dev/null)")
		if [ "$rc" -ne 0 ] || [ -z "$base" ]; then
			fail "$mode: the program alone, status $rc: $(head -c 200 "$TMP/err")"
			continue
		fi
		# shellcheck disable=SC2086
		early_run main KASHIM_CONFIG="$TMP/big.conf" HOSTILE_IDLE=37 $mode
		report_ok "$mode, stacks painted"
		r=$(cat "$TMP/report" 2> /dev/null)
		with=$(used_of "$r") || continue
		set -- $base $with
		echo "# stack measured, $mode: kashim's share $(($3 - $1)) bytes of the signal stack ($1 without kashim, $3 with), $(($4 - $2)) of a thread's ($2, $4)$(stacks_said "$r")"
		if [ $(($3 - $1)) -le "$KASHIM_STACK_BUDGET" ] && [ $(($4 - $2)) -le "$KASHIM_STACK_BUDGET" ]; then
			ok "$mode: kashim took $(($3 - $1)) bytes more of the signal stack, $(($4 - $2)) of a thread's (budget $KASHIM_STACK_BUDGET)"
		else
			fail "$mode: kashim took $(($3 - $1)) bytes more of the signal stack, $(($4 - $2)) of a thread's, over its budget of $KASHIM_STACK_BUDGET"
		fi
	done
}

test_small_stacks_during_load() {
	big_config
	local loader mode
	for loader in main thread; do
		for mode in "KASHIM_MODE=respect" "KASHIM_MODE=force KASHIM_DEBUG=1"; do
			# shellcheck disable=SC2086
			early_run "$loader" KASHIM_CONFIG="$TMP/big.conf" HOSTILE_IDLE=37 $mode
			report_ok "small threads and a small sigaltstack, loader $loader, $mode"
		done
	done
}

# Non-blocking connects made on 16 KiB threads while kashim loads, with
# filters: each is judged when the load ends, by the address the kernel
# holds; busy: the listeners' queues are full, so the connections are still
# in SYN_SENT then (46f1555 asked getpeername, which answers ENOTCONN until
# the handshake is done, and configured none of them).
test_connects_during_load_with_filters() {
	big_config
	local loader how r
	for how in busy answer; do
		for loader in main thread; do
			early_run "$loader" KASHIM_CONFIG="$TMP/big.conf" KASHIM_ONLY=127.0.0.1 HOSTILE_IDLE=37 \
				HOSTILE_CONNECT="$how"
			report_ok "KASHIM_ONLY=127.0.0.1, connects to a listener that is $how, loader $loader"
			r=$(cat "$TMP/report" 2> /dev/null)
			if [[ $r =~ excluded=([0-9]+)\ excluded_configured=0\ connect_failed=0 ]] &&
				[ "${BASH_REMATCH[1]}" -gt 0 ]; then
				ok "... and the ${BASH_REMATCH[1]} connections to 127.0.0.2 are left alone"
			else
				fail "... excluded connections: '$r'"
			fi
		done
	done
	early_run main KASHIM_CONFIG="$TMP/big.conf" KASHIM_SKIP=127.0.0.2 KASHIM_MODE=force KASHIM_DEBUG=1 \
		HOSTILE_IDLE=37 HOSTILE_CONNECT=busy
	report_ok "KASHIM_SKIP=127.0.0.2, force mode, debug, listener busy"
}

test_concurrent_first_calls_parse_once() {
	need_cmd strace || return
	big_config
	local loader opens
	for loader in main thread; do
		rm -f "$TMP/report"
		timeout 120 strace -f -qq -e trace=openat -e signal=none -o "$TMP/trace" \
			env LD_PRELOAD="$LIB:$EARLY" HOSTILE_BIG_STACKS=1 HOSTILE_REPORT="$TMP/report" \
			HOSTILE_LOADER="$loader" HOSTILE_IDLE=37 KASHIM_CONFIG="$TMP/big.conf" \
			"$HOSTILE" debuglines > "$TMP/out" 2> "$TMP/err"
		rc=$?
		opens=$(grep -c 'big.conf' "$TMP/trace")
		if [ "$opens" -eq 1 ]; then
			ok "loader $loader: the 64 KiB file opened once under a storm of calls and signals"
		else
			fail "loader $loader: the configuration file opened $opens times"
		fi
		report_ok "loader $loader, default stacks" 37
	done
	# No KASHIM_* variable: the load looks for /etc/kashim.conf (ENOENT).
	early_run thread HOSTILE_BIG_STACKS=1 HOSTILE_IDLE=15
	report_ok "no configuration at all: a successful socket() never changes errno"
}

test_stack_budget() {
	need_cmd gcc || return
	local f
	for f in shim config; do
		(cd "$TMP" && gcc -std=gnu11 -O2 -g -fPIC -fvisibility=hidden -fstack-usage \
			-fcallgraph-info=su -fno-common -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
			-c "$ROOT/$f.c" -o "$f.o") 2> "$TMP/build.err" ||
			{ fail "build: $(head -3 "$TMP/build.err")"; return; }
	done
	local calls="socket connect accept accept4 setsockopt sendto sendmsg sendmmsg close dup2 dup3"
	calls+=" close_range closefrom"
	# shellcheck disable=SC2086 # calls is words
	"$PY" "$HELPERS/stackdepth.py" --cut kashim_load_as_winner "$TMP/shim.ci" "$TMP/config.ci" -- \
		$calls > "$TMP/hot"
	# Debug off: no line is built, fd 2 is not looked at.
	# shellcheck disable=SC2086
	"$PY" "$HELPERS/stackdepth.py" --cut kashim_load_as_winner --cut kashim_line_left \
		--cut kashim_line_set --cut kashim_line_not_set --cut kashim_stderr_unchanged \
		"$TMP/shim.ci" "$TMP/config.ci" -- $calls > "$TMP/hot.off"
	local name bytes rest off
	while read -r name bytes rest; do
		off=$(awk -v n="$name" '$1 == n { print $2 }' "$TMP/hot.off")
		echo "# stack $name: $bytes bytes, the deepest chain in kashim (debug on; off: $off): ${rest%% (+*}"
		if [ "$bytes" -le "$KASHIM_STACK_BUDGET" ]; then
			ok "$name: $bytes bytes of kashim's frames on any path but the one-time load, $off with debug off (budget $KASHIM_STACK_BUDGET)"
		else
			fail "$name: $bytes bytes, over the $KASHIM_STACK_BUDGET-byte budget: $rest"
		fi
	done < "$TMP/hot"
	"$PY" "$HELPERS/stackdepth.py" --cut kashim_config_load_from "$TMP/shim.ci" "$TMP/config.ci" -- \
		kashim_load_as_winner kashim_config_load_from > "$TMP/load"
	read -r name bytes rest < "$TMP/load"
	echo "# stack load path without the parser: $bytes bytes"
	if [ "$bytes" -le 2048 ]; then ok "the loader's own frames: $bytes bytes (budget 2048)"; else fail "loader: $bytes bytes"; fi
	read -r name bytes rest < <(tail -n 1 "$TMP/load")
	echo "# stack the parser (kashim_config_load_from, config.c): $bytes bytes"
}

run_tests
