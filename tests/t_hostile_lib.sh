# Hostile conditions for the library: configuration files that would block
# or eat the program's input, pointers the kernel has not validated, small
# stacks, calls during the load, a reused stderr, silent misconfiguration,
# force mode after descriptor reuse, forged messages, two copies preloaded.
. "$(dirname "$0")/lib.sh"

HOSTILE=$ROOT/tests/hostile

# config_case WHAT PATH: the program runs within 10 s, its stdin untouched,
# and kashim says exactly one line about PATH.
config_case() {
	local what=$1 path=$2 out rc
	out=$(echo from-stdin | timeout 10 env LD_PRELOAD="$LIB" KASHIM_CONFIG="$path" "${KENV[@]}" \
		"$PY" -c 'import sys; print(sys.stdin.read().strip())' 2> "$TMP/err")
	rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$what: status $rc (124: it hung), stderr $(head -c 200 "$TMP/err")"
	elif [ "$out" != from-stdin ]; then
		fail "$what: the program's stdin was read by kashim: got '$out'"
	elif [ "$(wc -l < "$TMP/err")" -ne 1 ] || ! grep -q '^kashim: cannot read the configuration file ' "$TMP/err"; then
		fail "$what: want one message, got: $(head -c 300 "$TMP/err")"
	else
		ok "$what: $(cat "$TMP/err")"
	fi
}

test_config_fifo() {
	mkfifo "$TMP/fifo"
	config_case "a FIFO" "$TMP/fifo"
}
test_config_dev_stdin() { config_case "/dev/stdin" /dev/stdin; }
test_config_kmsg() {
	[ -e /dev/kmsg ] || { skip "no /dev/kmsg"; return; }
	config_case "/dev/kmsg" /dev/kmsg
}
test_config_tty() {
	[ -e /dev/tty ] || { skip "no /dev/tty"; return; }
	config_case "/dev/tty" /dev/tty
}
test_config_directory() { config_case "a directory" "$TMP"; }
test_config_symlink_loop() {
	ln -s "$TMP/b" "$TMP/a" && ln -s "$TMP/a" "$TMP/b"
	config_case "a symbolic link loop" "$TMP/a"
}
test_config_huge() {
	truncate -s 100M "$TMP/huge"
	config_case "a 100 MB (sparse) file" "$TMP/huge"
}

test_config_proc_file() {
	local rc
	timeout 10 env LD_PRELOAD="$LIB" KASHIM_CONFIG=/proc/self/status "$PROBE" tcp 15 15 9 150000 \
		> "$TMP/out" 2> "$TMP/err" < /dev/null
	rc=$?
	if [ "$rc" -eq 0 ] && ! grep -q '^not ok' "$TMP/out" && [ "$(wc -l < "$TMP/err")" -eq 1 ] &&
		grep -q '^kashim: cannot read the configuration file "/proc/self/status": a file of a kernel interface' "$TMP/err"; then
		ok "/proc/self/status: refused without reading it, one message, defaults set"
	else
		fail "status $rc: $(head -c 300 "$TMP/err") $(grep -m1 '^not ok' "$TMP/out")"
	fi
}

test_config_nul_byte() {
	printf 'idle = 21\nco\0unt = 5\ninterval = 22\n' > "$TMP/nul.conf"
	env LD_PRELOAD="$LIB" KASHIM_CONFIG="$TMP/nul.conf" "$PROBE" tcp 21 22 9 219000 > "$TMP/out" 2> "$TMP/err"
	if [ "$(cat "$TMP/err")" = "kashim: $TMP/nul.conf:2: a NUL byte in the line; line ignored" ] &&
		! grep -q '^not ok' "$TMP/out"; then
		ok "one message names the file and line; the lines after it still apply"
	else
		fail "stderr '$(cat "$TMP/err")' $(grep -m1 '^not ok' "$TMP/out")"
	fi
}

test_listen_fds_hostile_values() {
	local v rc bad=""
	for v in -1 0 4096 99999999999999999999999 3x ""; do
		timeout 10 env LD_PRELOAD="$LIB" LISTEN_FDS="$v" "${KENV[@]}" "$PROBE" tcp 37 11 4 81000 \
			> "$TMP/out" 2> "$TMP/err" < /dev/null
		rc=$?
		if [ "$rc" -ne 0 ] || [ -s "$TMP/err" ] || grep -q '^not ok' "$TMP/out"; then
			bad+=" LISTEN_FDS='$v': status $rc $(head -c 100 "$TMP/err")"
		fi
	done
	if [ -z "$bad" ]; then
		ok "LISTEN_FDS -1, 0, 4096, 10^23, 3x, empty: the program runs, sockets configured"
	else
		fail "$bad"
	fi
}

# The program gets exactly what libc gives, in every mode.
calls_case() {
	local what=$1
	shift
	"$HOSTILE" calls > "$TMP/plain" 2>&1
	env LD_PRELOAD="$LIB" "${KENV[@]}" "$@" "$HOSTILE" calls > "$TMP/kashim" 2> "$TMP/err"
	local rc=$?
	if [ "$rc" -eq 0 ] && [ "$(wc -l < "$TMP/plain")" -ge 25 ] && cmp -s "$TMP/plain" "$TMP/kashim"; then
		ok "$what: the same $(wc -l < "$TMP/plain") answers as without kashim (EFAULT, EINVAL...)"
	else
		fail "$what: status $rc (139: crashed): $(diff "$TMP/plain" "$TMP/kashim" | head -6 | tr '\n' ';')"
	fi
}
test_bad_pointers_and_values_respect() { calls_case "respect mode"; }
test_bad_pointers_and_values_force() { calls_case "force mode" KASHIM_MODE=force; }
test_bad_pointers_and_values_filters() { calls_case "with filters" KASHIM_SKIP=10.9.9.9 KASHIM_MODE=force; }

test_force_mode_after_descriptor_reuse() {
	env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_MODE=force "$HOSTILE" reuse > "$TMP/out" 2>&1
	if [ "$(tr '\n' ' ' < "$TMP/out")" = "own 37 elsewhere 100 same-number dup2 100 " ]; then
		ok "kashim's socket keeps idle 37; a socket from elsewhere or dup2 on its number gets the program's 100"
	else
		fail "$(tr '\n' ' ' < "$TMP/out")"
	fi
}

test_small_stacks_during_load() {
	# 4 threads with 16 KiB stacks making sockets and a signal handler on a
	# 4 KiB sigaltstack calling socket/connect/setsockopt, all while a
	# 59 KB configuration file loads.
	local i rc
	for i in $(seq 2000); do echo "# filler line $i xxxxxxxxxx"; done | head -c 59000 > "$TMP/big.conf"
	printf '\nidle = 37\n' >> "$TMP/big.conf"
	for order in "$ROOT/tests/libhostile_load.so:$LIB" "$LIB:$ROOT/tests/libhostile_load.so"; do
		rm -f "$TMP/report"
		timeout 30 env LD_PRELOAD="$order" HOSTILE_REPORT="$TMP/report" KASHIM_CONFIG="$TMP/big.conf" \
			KASHIM_INTERVAL=11 KASHIM_COUNT=4 "$HOSTILE" one > /dev/null 2> "$TMP/err"
		rc=$?
		if [ "$rc" -eq 0 ] && grep -q '^threads 1200 sockets, errno changed 0 times, signals [1-9][0-9]*, last-during-load 1$' "$TMP/report" &&
			[ ! -s "$TMP/err" ]; then
			ok "LD_PRELOAD=${order//$ROOT\//}: $(cat "$TMP/report")"
		else
			fail "LD_PRELOAD=${order//$ROOT\//}: status $rc (139: crashed, 124: never finished), report '$(cat "$TMP/report" 2> /dev/null)' stderr '$(head -c 200 "$TMP/err")'"
		fi
	done
}

# The stack budget (README, Reliability): each wrapped call at most 512
# bytes over libc's own call with debug off, 2 KiB with KASHIM_DEBUG; the
# loader at most 6 KiB over a plain socket().
test_stack_budget() {
	local base name d over bad="" line=""
	"$HOSTILE" stack > "$TMP/plain"
	base=$(awk '$1 == "socket" {print $2}' "$TMP/plain")
	for debug in 0 1; do
		env LD_PRELOAD="$LIB" KASHIM_DEBUG=$debug "$HOSTILE" stack > "$TMP/k" 2> /dev/null
		while read -r name d; do
			[ "$name" = thread ] && continue
			over=$((d - $(awk -v n="$name" '$1 == n {print $2}' "$TMP/plain")))
			line+=" $name+$over"
			[ "$over" -le $((debug ? 2048 : 512)) ] || bad+=" $name+$over(debug=$debug)"
		done < "$TMP/k"
		line+=" |"
	done
	printf '\nidle = 37\n' > "$TMP/k.conf"
	env LD_PRELOAD="$LIB:$ROOT/tests/libhostile_load.so" HOSTILE_STACK="$TMP/st" KASHIM_CONFIG="$TMP/k.conf" \
		KASHIM_DEBUG=1 "$HOSTILE" one 2> /dev/null
	d=$(awk '{print $2}' "$TMP/st" 2> /dev/null)
	over=$((${d:-99999} - base))
	line+=" loader+$over"
	[ "$over" -le 6144 ] || bad+=" loader+$over"
	if [ -z "$bad" ]; then
		ok "bytes over libc's own (debug off | on):$line"
	else
		fail "over budget:$bad (all:$line)"
	fi
}

test_stderr_reused_by_a_socket() {
	local what
	for what in "closed at start" "closed by the program"; do
		if [ "$what" = "closed at start" ]; then
			env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_DEBUG=1 "$HOSTILE" stderr2 > "$TMP/out" 2>&-
		else
			env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_DEBUG=1 "$HOSTILE" stderr2 > "$TMP/out" 2> "$TMP/err"
		fi
		local rc=$?
		if [ "$rc" -eq 0 ] && [ "$(cat "$TMP/out")" = "peer read 0 bytes" ]; then
			ok "fd 2 $what, then a socket: no debug line in it, no SIGPIPE"
		else
			fail "fd 2 $what: status $rc (141: SIGPIPE), '$(cat "$TMP/out")'"
		fi
	done
}

test_stderr_pipe_without_reader() {
	"$PY" - "$LIB" "$HOSTILE" > "$TMP/out" 2>&1 <<'EOF'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
env = dict(os.environ, LD_PRELOAD=sys.argv[1], KASHIM_DEBUG="1")
print(subprocess.run([sys.argv[2], "one"], stderr=w, env=env).returncode)
EOF
	if [ "$(cat "$TMP/out")" = 0 ]; then
		ok "stderr a pipe nobody reads, KASHIM_DEBUG=1: the program exits 0, no SIGPIPE"
	else
		fail "status $(cat "$TMP/out") (-13: killed by SIGPIPE)"
	fi
}

test_skip_v4_mapped() {
	env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_SKIP=::ffff:127.0.0.1 "$PY" -c "
import socket
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()
c = socket.socket(); c.connect(l.getsockname())
d = socket.socket(socket.AF_INET6); d.bind(('::', 0)); d.listen()
e = socket.socket(socket.AF_INET6); e.connect(('::1', d.getsockname()[1]))
print(c.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), e.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))" \
		> "$TMP/out" 2> "$TMP/err"
	if [ "$(cat "$TMP/out")" = "0 1" ] && [ ! -s "$TMP/err" ]; then
		ok "KASHIM_SKIP=::ffff:127.0.0.1 skips an IPv4 connection to 127.0.0.1, not one to ::1"
	else
		fail "keepalive (127.0.0.1, ::1) = '$(cat "$TMP/out")', stderr '$(cat "$TMP/err")'"
	fi
}

test_program_globs_that_never_match() {
	local long
	# A glob of 300 bytes has no length limit to fall over: it matches.
	long=probe$(printf '*%.0s' $(seq 300))
	env LD_PRELOAD="$LIB" KASHIM_PROGRAMS=/usr/bin/python3 "$PROBE" tcp 15 15 9 150000 > /dev/null 2> "$TMP/err1"
	env LD_PRELOAD="$LIB" KASHIM_PROGRAMS="$long" "${KENV[@]}" "$PROBE" tcp 37 11 4 81000 > "$TMP/out2" 2> "$TMP/err2"
	printf '[program /usr/bin/*]\nidle = 20\n' > "$TMP/k.conf"
	env LD_PRELOAD="$LIB" KASHIM_CONFIG="$TMP/k.conf" "$PROBE" tcp 15 15 9 150000 > /dev/null 2> "$TMP/err3"
	if grep -q "^kashim: KASHIM_PROGRAMS=\"/usr/bin/python3\" ignored (a program is matched by its file name, without '/'" "$TMP/err1" &&
		[ ! -s "$TMP/err2" ] && ! grep -q '^not ok' "$TMP/out2" &&
		grep -q "^kashim: $TMP/k.conf:1: a program is matched by its file name, without '/'" "$TMP/err3"; then
		ok "a '/' gets a message (environment and [program] section); a 300-byte glob matches"
	else
		fail "$(cat "$TMP/err1" "$TMP/err2" "$TMP/err3" | head -c 600) $(grep -m1 '^not ok' "$TMP/out2")"
	fi
}

test_messages_cannot_be_forged() {
	local dir=$TMP/$'x\nkashim: forged'
	mkdir -p "$dir"
	printf 'idle = soon\n' > "$dir/k.conf"
	env LD_PRELOAD="$LIB" KASHIM_CONFIG="$dir/k.conf" KASHIM_COUNT=zero "$PROBE" tcp 15 15 9 150000 \
		> /dev/null 2> "$TMP/err"
	if [ "$(wc -l < "$TMP/err")" -eq 2 ] && ! grep -q '^kashim: forged' "$TMP/err" &&
		grep -q '\\x0akashim: forged/k.conf:1: idle="soon" ignored' "$TMP/err"; then
		ok "a file name with a newline stays escaped in every message: $(tr '\n' '|' < "$TMP/err" | head -c 200)"
	else
		fail "$(cat "$TMP/err")"
	fi
}

test_two_copies_preloaded() {
	need_cmd strace || return
	mkdir -p "$TMP/a" "$TMP/b"
	cp "$LIB" "$TMP/a/libkashim.so" && cp "$LIB" "$TMP/b/libkashim.so"
	ln -s "$TMP/a/libkashim.so" "$TMP/c.so"
	local preload
	for preload in "$TMP/a/libkashim.so $TMP/b/libkashim.so" "$TMP/a/libkashim.so:$TMP/c.so"; do
		env "${KENV[@]}" KASHIM_DEBUG=1 KASHIM_BOGUS=1 strace -E LD_PRELOAD="$preload" \
			-f -e trace=setsockopt -o "$TMP/trace" "$HOSTILE" one 2> "$TMP/err"
		local sets loaded bogus
		sets=$(grep -c 'setsockopt(' "$TMP/trace")
		loaded=$(grep -c ': loaded: ' "$TMP/err")
		bogus=$(grep -c 'KASHIM_BOGUS' "$TMP/err")
		if [ "$sets" -eq 5 ] && [ "$loaded" -eq 1 ] && [ "$bogus" -eq 1 ] &&
			[ "$(grep -c 'keepalive set' "$TMP/err")" -eq 1 ]; then
			ok "LD_PRELOAD='${preload//$TMP\//}': 5 setsockopt, one set of messages"
		else
			fail "LD_PRELOAD='${preload//$TMP\//}': $sets setsockopt, $loaded 'loaded', $bogus BOGUS: $(head -c 300 "$TMP/err")"
		fi
	done
}

run_tests
