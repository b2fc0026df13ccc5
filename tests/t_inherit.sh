# SPDX-License-Identifier: MIT
# Sockets the program did not create through socket(): listeners handed
# over by systemd socket activation or a parent, an inetd-style connection
# on stdin, sockets created elsewhere and then connected.
. "$(dirname "$0")/lib.sh"

# The programs mark their start in the file named by their first argument:
# kashim's constructor has run by then, and a look at the kernel before it
# would see the launcher's socket, not kashim's work (ASan's slow start).
ACCEPT_ON_3='import socket, sys, time
open(sys.argv[1], "w").close()
l = socket.socket(fileno=3)
held = [l.accept()[0] for _ in range(1)]
time.sleep(60)'

# launch MODE PORT PROGRAM...: run PROGRAM under kashim via the launcher.
launch() {
	bg env LAUNCH_PRELOAD="$LIB" "${KENV[@]}" "$PY" "$HELPERS/launch.py" "$@"
}

# started FILE: the program has marked its start in FILE.
started() {
	wait_for 60 test -e "$1" ||
		{ fail "the scene did not get ready: the program did not start within 60 s"; return 1; }
}

test_systemd_listen_fds() {
	local port server
	port=$(free_port)
	launch listen-fds "$port" "$PY" -c "$ACCEPT_ON_3" "$TMP/started.$port"
	server=$BG
	started "$TMP/started.$port" || return
	expect_socket "$server" "fd=3 .*state=LISTEN" "$WANT" \
		"the LISTEN_FDS listener is configured at load"
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$server" "state=ESTABLISHED local=[^ ]*:$port " "$WANT" \
		"and the connection accepted from it"
}

test_listen_fds_for_another_pid_is_not_touched() {
	local port server
	port=$(free_port)
	launch listen-fds-other "$port" "$PY" -c "$ACCEPT_ON_3" "$TMP/started.$port"
	server=$BG
	started "$TMP/started.$port" || return
	expect_socket "$server" "fd=3 .*state=LISTEN" "keepalive=0" \
		"LISTEN_PID of another process: the listener is not adopted"
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$server" "state=ESTABLISHED local=[^ ]*:$port " "$WANT" \
		"yet its accepted connection is configured at accept()"
}

test_listener_inherited_from_parent() {
	local port server
	port=$(free_port)
	launch inherit "$port" "$PY" -c "$ACCEPT_ON_3" "$TMP/started.$port"
	server=$BG
	started "$TMP/started.$port" || return
	expect_socket "$server" "fd=3 .*state=LISTEN" "keepalive=0" \
		"a plain inherited listener is left as it is"
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$server" "state=ESTABLISHED local=[^ ]*:$port " "$WANT" \
		"its accepted connection is configured at accept()"
}

test_inetd_style_stdin() {
	local port server
	port=$(free_port)
	launch inetd "$port" "$PY" -c 'import sys, time; open(sys.argv[1], "w").close(); time.sleep(60)' \
		"$TMP/started.$port"
	server=$BG
	wait_listen "$port" || { fail "the scene did not get ready: no listener within 60 s"; return; }
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	started "$TMP/started.$port" || return
	expect_socket "$server" "fd=0 .*state=ESTABLISHED" "$WANT" \
		"the connection on stdin is configured at load"
}

run_tests
