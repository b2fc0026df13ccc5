# SPDX-License-Identifier: MIT
# The configuration under hostile input (issue 9), with real preloaded
# programs: KASHIM_CONFIG or /etc/kashim.conf naming what is not a
# configuration file (the program must neither hang nor lose its stdin), a
# NUL byte, IPv4-mapped addresses in KASHIM_SKIP, program globs that could
# never match, paths and values that would forge messages, hostile
# LISTEN_FDS; and the loader's stack, from gcc's -fstack-usage.  Every
# program runs under a time limit: a hang fails.
. "$(dirname "$0")/lib.sh"

# The program: reads all of its stdin, then reports a new TCP socket's
# options, "keepalive idle interval count user_timeout".
READ_AND_SOCKET='import socket, sys
data = sys.stdin.read()
s = socket.socket()
T = socket.IPPROTO_TCP
print("read %d lines" % len(data.splitlines()), s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
      s.getsockopt(T, socket.TCP_KEEPIDLE), s.getsockopt(T, socket.TCP_KEEPINTVL),
      s.getsockopt(T, socket.TCP_KEEPCNT), s.getsockopt(T, socket.TCP_USER_TIMEOUT))'
DEFAULTS="1 15 15 9 150000"

# A socket kashim left alone: the kernel's idle, interval and count, no
# user timeout.
kernel_defaults() {
	echo "$(cat /proc/sys/net/ipv4/tcp_keepalive_time) $(cat /proc/sys/net/ipv4/tcp_keepalive_intvl)" \
		"$(cat /proc/sys/net/ipv4/tcp_keepalive_probes) 0"
}

# run_bounded ENV...: the program under kashim with ENV, three lines on its
# stdin, at most 10 s; stdout in $TMP/out, stderr in $TMP/err, status in $rc.
run_bounded() {
	printf 'one\ntwo\nthree\n' | timeout -k 2 10 env LD_PRELOAD="$LIB" "$@" "$PY" -c "$READ_AND_SOCKET" \
		> "$TMP/out" 2> "$TMP/err"
	rc=$?
}

# expect_one_line WHAT OUT LINE: status 0 within the time limit, stdout OUT,
# stderr exactly LINE.
expect_one_line() {
	local what=$1 want_out=$2 want_err=$3
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail "$what: still running after 10 s"
	elif [ "$rc" -ne 0 ]; then
		fail "$what: status $rc: $(head -c 300 "$TMP/err")"
	elif [ "$(cat "$TMP/out")" != "$want_out" ]; then
		fail "$what: program printed '$(cat "$TMP/out")', want '$want_out'"
	elif [ "$(cat "$TMP/err")" != "$want_err" ]; then
		fail "$what: stderr '$(head -c 400 "$TMP/err")', want '$want_err'"
	else
		ok "$what"
	fi
}

# not_a_file PATH WHY: KASHIM_CONFIG=PATH gets one message with WHY, the
# program reads all its input and gets the defaults.
not_a_file() {
	run_bounded KASHIM_CONFIG="$1"
	expect_one_line "KASHIM_CONFIG=$1" "read 3 lines $DEFAULTS" \
		"kashim: cannot read the configuration file \"$1\": $2; it is ignored"
}

test_config_that_is_not_a_file() {
	local kernel="a file of a kernel interface (/proc, /sys), not a configuration file"
	mkfifo "$TMP/fifo"
	mkdir "$TMP/dir"
	ln -s "$TMP/loop-b" "$TMP/loop-a"
	ln -s "$TMP/loop-a" "$TMP/loop-b"
	"$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$TMP/sock"
	truncate -s 1G "$TMP/sparse"
	head -c 65537 /dev/zero | tr '\0' '#' > "$TMP/64k+1"
	{ printf 'idle = '; head -c 102400 /dev/zero | tr '\0' 7; echo; } > "$TMP/long-line"
	not_a_file "$TMP/fifo" "not a regular file (a FIFO)"
	not_a_file /dev/stdin "not a regular file (a FIFO)"
	not_a_file /dev/ptmx "not a regular file (a character device)"
	not_a_file /dev/zero "not a regular file (a character device)"
	not_a_file /dev/urandom "not a regular file (a character device)"
	not_a_file /dev/kmsg "not a regular file (a character device)"
	not_a_file /proc/self/mem "$kernel"
	not_a_file /proc/kmsg "$kernel"
	not_a_file /sys/kernel/mm/transparent_hugepage/enabled "$kernel"
	not_a_file "$TMP/dir" "not a regular file (a directory)"
	not_a_file "$TMP/sock" "not a regular file (a socket)"
	not_a_file "$TMP/loop-a" "too many symbolic links (a loop?)"
	not_a_file "$TMP/sparse" "larger than 64 KiB"
	not_a_file "$TMP/64k+1" "larger than 64 KiB"
	not_a_file "$TMP/long-line" "larger than 64 KiB"
	# the command shares the parser: kashim check must not hang either
	timeout -k 2 10 env KASHIM_CONFIG="$TMP/fifo" "$ROOT/kashim" check > /dev/null 2> "$TMP/err"
	rc=$?
	if [ "$rc" = 1 ] && grep -qF "\"$TMP/fifo\": not a regular file (a FIFO); it is ignored" "$TMP/err"; then
		ok "kashim check with KASHIM_CONFIG naming a FIFO: one message, status 1"
	else
		fail "kashim check on a FIFO: status $rc: $(head -c 300 "$TMP/err")"
	fi
}

test_config_exactly_64k_and_crlf() {
	{ printf 'idle = 21\r\ncount = 3\r\n'; head -c $((65536 - 22)) /dev/zero | tr '\0' '#'; } > "$TMP/k.conf"
	run_bounded KASHIM_CONFIG="$TMP/k.conf"
	expect_one_line "a file of exactly 64 KiB with CRLF line ends is read" \
		"read 3 lines 1 21 15 3 66000" ""
}

# /etc/kashim.conf as a FIFO, in a private mount namespace (the lookup of
# a host-wide preload, where programs start with no KASHIM_* variable).
test_etc_kashim_conf_fifo() {
	need_root || return
	mkdir "$TMP/etc"
	cp -a /etc/. "$TMP/etc/"
	rm -f "$TMP/etc/kashim.conf"
	mkfifo "$TMP/etc/kashim.conf"
	printf 'one\ntwo\nthree\n' | timeout -k 2 10 unshare -m sh -c \
		"mount --bind '$TMP/etc' /etc && exec env LD_PRELOAD='$LIB' '$PY' -c '$READ_AND_SOCKET'" \
		> "$TMP/out" 2> "$TMP/err"
	rc=$?
	expect_one_line "/etc/kashim.conf a FIFO: one message, the program runs" "read 3 lines $DEFAULTS" \
		'kashim: cannot read the configuration file "/etc/kashim.conf": not a regular file (a FIFO); it is ignored'
}

test_nul_byte() {
	printf 'idle = 21\ncount\0 = 2\ncount = 3\n' > "$TMP/k.conf"
	run_bounded KASHIM_CONFIG="$TMP/k.conf"
	expect_one_line "a NUL byte: its line reported, the lines after it apply" \
		"read 3 lines 1 21 15 3 66000" "kashim: $TMP/k.conf:2: a NUL byte in the line; line ignored"
}

# A client connection to 127.0.0.1, over an AF_INET socket and over an
# AF_INET6 one (the address IPv4-mapped): SO_KEEPALIVE of each.
MAPPED_CLIENTS='import socket
l = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
port = l.getsockname()[1]
c4 = socket.create_connection(("127.0.0.1", port))
c6 = socket.socket(socket.AF_INET6)
c6.connect(("::ffff:127.0.0.1", port))
print(c4.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), c6.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))'

test_ipv4_mapped_rules() {
	local rule out
	for rule in ::ffff:127.0.0.1 ::ffff:127.0.0.0/104 '[::ffff:127.0.0.1]:1-65535'; do
		out=$(timeout 10 env LD_PRELOAD="$LIB" KASHIM_SKIP="$rule" "$PY" -c "$MAPPED_CLIENTS" 2> "$TMP/err")
		if [ "$out" = "0 0" ] && [ ! -s "$TMP/err" ]; then
			ok "KASHIM_SKIP=$rule skips 127.0.0.1, over IPv4 and IPv4-mapped IPv6"
		else
			fail "KASHIM_SKIP=$rule: keepalive '$out' (want 0 0): $(head -c 300 "$TMP/err")"
		fi
	done
	out=$(timeout 10 env LD_PRELOAD="$LIB" KASHIM_ONLY=::ffff:127.0.0.1 "$PY" -c "$MAPPED_CLIENTS" 2> "$TMP/err")
	if [ "$out" = "1 1" ]; then ok "KASHIM_ONLY=::ffff:127.0.0.1 covers both"; else fail "ONLY: '$out'"; fi
}

test_program_globs() {
	local long="p" i
	for i in $(seq 298); do long+="*"; done
	long+="3"
	run_bounded KASHIM_PROGRAMS="$long"
	expect_one_line "KASHIM_PROGRAMS with a 300-byte glob that matches python3" "read 3 lines $DEFAULTS" ""
	run_bounded KASHIM_SKIP_PROGRAMS="$long"
	expect_one_line "KASHIM_SKIP_PROGRAMS with it leaves python3 alone" "read 3 lines 0 $(kernel_defaults)" ""
	run_bounded KASHIM_PROGRAMS=/usr/bin/python3
	expect_one_line "KASHIM_PROGRAMS=/usr/bin/python3: one line, the filter not applied" \
		"read 3 lines $DEFAULTS" \
		"kashim: KASHIM_PROGRAMS=\"/usr/bin/python3\" ignored (a program is matched by its file name, without '/', as python3); accepted: comma-separated program names or shell globs, as java,python3*; using the default (none: every program)"
	run_bounded 'KASHIM_SKIP_PROGRAMS=python[3'
	expect_one_line "KASHIM_SKIP_PROGRAMS=python[3: one line" "read 3 lines $DEFAULTS" \
		"kashim: KASHIM_SKIP_PROGRAMS=\"python[3\" ignored (a [ without its ] or with an unknown [:class:]; \\[ is the character [); accepted: comma-separated program names or shell globs, as java,python3*; using the default (none)"
	printf '[program /usr/bin/python3]\nidle = 5\n[program python[3]\nidle = 6\n' > "$TMP/k.conf"
	run_bounded KASHIM_CONFIG="$TMP/k.conf"
	if [ "$rc" = 0 ] && [ "$(cat "$TMP/out")" = "read 3 lines $DEFAULTS" ] && [ "$(wc -l < "$TMP/err")" = 2 ] &&
		grep -qF "k.conf:1: a program is matched by its file name" "$TMP/err" &&
		grep -qF "k.conf:3: a [ without its ]" "$TMP/err"; then
		ok "[program] sections named with '/' or an unbalanced [: one line each"
	else
		fail "sections: status $rc, out '$(cat "$TMP/out")', err '$(head -c 400 "$TMP/err")'"
	fi
}

# Nothing from the environment or a file starts a line of its own: every
# line on stderr is a message that starts with "kashim: " and names no
# forged text at its start, and no terminal escape reaches stderr raw.
test_messages_cannot_be_forged() {
	local dir="$TMP/x
kashim: forged"$'\e[31m'
	mkdir "$dir"
	printf 'idle = 9\ncount = x\nbogus = 1\n' > "$dir/k.conf"
	run_bounded KASHIM_CONFIG="$dir/k.conf" KASHIM_IDLE=$'bad\nkashim: forged\e[2J' KEEPCNT=$'1\n2'
	if [ "$rc" = 0 ] && [ "$(wc -l < "$TMP/err")" = 4 ] && ! grep -v '^kashim: ' "$TMP/err" | grep -q . &&
		! grep -q '^kashim: forged' "$TMP/err" && ! grep -q $'\e' "$TMP/err" &&
		grep -qF 'ignored (not a number); accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the value from' "$TMP/err" &&
		grep -qF '/x\x0akashim: forged\x1b[31m/k.conf:1' "$TMP/err"; then
		ok "a path and values with newlines and escapes: 4 messages, 4 lines, all escaped"
	else
		fail "status $rc, stderr: $(cat -A "$TMP/err" | head -c 800)"
	fi
	run_bounded KASHIM_CONFIG="$dir"
	expect_one_line "the unreadable-file message escapes the path" "read 3 lines $DEFAULTS" \
		"kashim: cannot read the configuration file \"$TMP/x\\x0akashim: forged\\x1b[31m\": not a regular file (a directory); it is ignored"
}

test_hostile_listen_fds() {
	local v
	for v in -1 0x10 99999999999999999999 4097 ' 3' '3 ' ''; do
		run_bounded LISTEN_FDS="$v" LISTEN_PID=$$
		expect_one_line "LISTEN_FDS='$v': ignored, silently (systemd's variable)" "read 3 lines $DEFAULTS" ""
	done
}

# The loader's stack, from gcc's own figures: each function's frame
# (-fstack-usage) summed along the deepest path of the call graph
# (-fcallgraph-info=su), libc's functions counted apart (tests/test_config
# measures the whole, libc included, on a painted stack).
test_loader_stack_budget() {
	local cc=${CC:-cc} out bytes
	(cd "$TMP" && "$cc" -std=gnu11 -O2 -fPIC -fvisibility=hidden -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
		-fstack-usage -fcallgraph-info=su -c "$ROOT/config.c" -o config.o) 2> "$TMP/build.err" ||
		{ fail "build: $(head -c 300 "$TMP/build.err")"; return; }
	out=$("$PY" "$HELPERS/stackdepth.py" "$TMP/config.ci" -- kashim_config_load_from 2>&1) ||
		{ fail "stackdepth: $out"; return; }
	read -r _ bytes _ <<< "$out"
	echo "# kashim_config_load_from worst path: $out"
	if [ "$bytes" -le 1536 ]; then
		ok "the loader's deepest path in config.c is $bytes bytes (budget 1536)"
	else
		fail "the loader's deepest path is $bytes bytes, over 1536: $out"
	fi
}

run_tests
