# SPDX-License-Identifier: MIT
# Policy and reach with real programs and real connections: KASHIM_SCOPE,
# KASHIM_ONLY/SKIP against loopback addresses and ports of servers started
# here (IPv4, IPv6, IPv4-mapped), program filters, force mode against
# programs that set their own timers (redis-server, curl), the
# configuration file, and the variables of libkeepalive and libdontdie.
. "$(dirname "$0")/lib.sh"

OFF="keepalive=0"

# servers: three plain listeners (no kashim) on 127.0.0.1, 127.0.0.2, ::1.
servers() {
	P1=$(free_port) P2=$(free_port) P3=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$P1"
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.2 "$P2"
	bg "$PY" "$HELPERS/hold.py" server ::1 "$P3"
	wait_listen "$P1" && wait_listen "$P2" && wait_listen "$P3"
}

# client_case WHAT WANT1 WANT2 WANT3 ENV...: a python3 client under kashim
# with ENV connects to the three servers; each connection must carry WANTn.
client_case() {
	local what=$1 w1=$2 w2=$3 w3=$4
	shift 4
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" "$@" "$PY" "$HELPERS/hold.py" clients - - \
		"127.0.0.1:$P1" "127.0.0.2:$P2" "[::1]:$P3"
	local c=$BG
	expect_socket "$c" "remote=127\.0\.0\.1:$P1 " "$w1" "$what: to 127.0.0.1:$P1"
	expect_socket "$c" "remote=127\.0\.0\.2:$P2 " "$w2" "$what: to 127.0.0.2:$P2"
	expect_socket "$c" "remote=\[::1\]:$P3 " "$w3" "$what: to [::1]:$P3"
}

test_skip_and_only_for_connections_made() {
	servers || { fail "the scene did not get ready: servers did not start within 60 s"; return; }
	client_case "KASHIM_SKIP=127.0.0.2" "$WANT" "$OFF" "$WANT" KASHIM_SKIP=127.0.0.2
	client_case "KASHIM_ONLY=:P3" "$OFF" "$OFF" "$WANT" KASHIM_ONLY=":$P3"
	client_case "ONLY=127.0.0.0/8 with SKIP=127.0.0.2: SKIP wins" "$WANT" "$OFF" "$OFF" \
		KASHIM_ONLY=127.0.0.0/8 KASHIM_SKIP=127.0.0.2
	client_case "KASHIM_SKIP=[::1]:P3 and a port range" "$OFF" "$WANT" "$OFF" \
		KASHIM_SKIP="[::1]:$P3,127.0.0.1:$P1-$P1"
}

test_ipv4_mapped_matches_ipv4_rules() {
	servers || { fail "the scene did not get ready: servers did not start within 60 s"; return; }
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_SKIP=127.0.0.1 "$PY" "$HELPERS/hold.py" clients - - "[::ffff:127.0.0.1]:$P1" "127.0.0.2:$P2"
	expect_socket "$BG" "remote=\[::ffff:127\.0\.0\.1\]:$P1 " "$OFF" "KASHIM_SKIP=127.0.0.1 skips ::ffff:127.0.0.1"
	expect_socket "$BG" "remote=127\.0\.0\.2:$P2 " "$WANT" "and covers the rest"
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_ONLY=127.0.0.1 "$PY" "$HELPERS/hold.py" clients - - "[::ffff:127.0.0.1]:$P1"
	expect_socket "$BG" "remote=\[::ffff:127\.0\.0\.1\]:$P1 " "$WANT" "KASHIM_ONLY=127.0.0.1 covers ::ffff:127.0.0.1"
}

# Accepted connections are matched on their local address and port.
test_skip_for_connections_accepted() {
	local p1 p2 s1 s2
	p1=$(free_port) p2=$(free_port)
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_SKIP=127.0.0.2 "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$p1"
	s1=$BG
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_SKIP=127.0.0.2 "$PY" "$HELPERS/hold.py" server 127.0.0.2 "$p2"
	s2=$BG
	wait_listen "$p1" && wait_listen "$p2" || { fail "the scene did not get ready: servers did not start within 60 s"; return; }
	bg "$PY" "$HELPERS/hold.py" clients - - "127.0.0.1:$p1" "127.0.0.2:$p2"
	expect_socket "$s1" "state=ESTABLISHED local=127\.0\.0\.1:$p1 " "$WANT" "accepted on 127.0.0.1: covered"
	expect_socket "$s2" "state=ESTABLISHED local=127\.0\.0\.2:$p2 " "$OFF" "accepted on 127.0.0.2: skipped"
	expect_socket "$s1" "state=LISTEN" "$OFF" "with filters the listener itself is left alone"
}

# A TCP socket on a number a UDP socket held before (issue 21), in real
# programs: python3's own TCP socket dup2()ed onto a UDP socket's number and
# connected; without filters, python3's own TCP socket (configured at
# socket()) closed and a socket made with syscall() on its number,
# connected; a listener handed over with SCM_RIGHTS that lands on the
# number of a UDP socket the receiver closed, and the connections it accepts.
test_stale_number_real_programs() {
	local port env
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	wait_listen "$port" || { fail "the scene did not get ready: no server within 60 s"; return; }
	for env in KASHIM_SKIP=10.0.0.0/8 KASHIM_ONLY=127.0.0.0/8 KASHIM_SCOPE=client; do
		bg env LD_PRELOAD="$LIB" "${KENV[@]}" "$env" "$PY" "$HELPERS/stale.py" dup2 127.0.0.1 "$port"
		expect_socket "$BG" "remote=127\.0\.0\.1:$port " "$WANT" \
			"$env: python3's TCP socket dup2()ed onto a UDP socket's number"
	done
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" "$PY" "$HELPERS/stale.py" reuse 127.0.0.1 "$port"
	wait_for 60 grep -q '^connected on fd \([0-9]*\) (the closed socket.s was \1)' "$TMP/bg.$BG.log" ||
		{ fail "the scene did not get ready: the socket did not land on the closed one's number: $(cat "$TMP/bg.$BG.log")"; return; }
	expect_socket "$BG" "remote=127\.0\.0\.1:$port " "$WANT" \
		"no filter: a socket from syscall() on the number of python3's closed TCP socket"
	for env in "" KASHIM_SKIP=10.0.0.0/8 KASHIM_SCOPE=server; do
		local sport recv
		sport=$(free_port)
		bg "$PY" "$HELPERS/stale.py" send "$TMP/hand.$sport" 127.0.0.1 "$sport"
		wait_for 60 test -S "$TMP/hand.$sport" ||
			{ fail "the scene did not get ready: no hand-over socket within 60 s"; return; }
		# shellcheck disable=SC2086 # no word, or one
		bg env LD_PRELOAD="$LIB" "${KENV[@]}" $env "$PY" "$HELPERS/stale.py" receive "$TMP/hand.$sport"
		recv=$BG
		wait_for 60 grep -q '^listening on fd \([0-9]*\) (the UDP socket.s was \1)' "$TMP/bg.$recv.log" ||
			{ fail "the scene did not get ready: the listener did not land on the UDP socket's number: $(cat "$TMP/bg.$recv.log")"; return; }
		bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$sport"
		expect_socket "$recv" "state=ESTABLISHED local=127\.0\.0\.1:$sport " "$WANT" \
			"${env:-no filter}: accepted on a listener received (SCM_RIGHTS) on a UDP socket's number"
	done
}

scope_case() {
	local scope=$1 want_server=$2 want_client=$3 port server
	port=$(free_port)
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_SCOPE="$scope" "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	server=$BG
	wait_listen "$port" || { fail "the scene did not get ready: no server within 60 s"; return; }
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_SCOPE="$scope" "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$server" "state=ESTABLISHED local=[^ ]*:$port " "$want_server" "KASHIM_SCOPE=$scope: accepted"
	expect_socket "$BG" "state=ESTABLISHED .*remote=[^ ]*:$port " "$want_client" "KASHIM_SCOPE=$scope: made"
}

test_scope_client() { scope_case client "$OFF" "$WANT"; }
test_scope_server() { scope_case server "$WANT" "$OFF"; }

test_program_filters() {
	local port
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	wait_listen "$port" || { fail "the scene did not get ready: no server within 60 s"; return; }
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_PROGRAMS=java,nginx "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$BG" "ESTABLISHED" "$OFF" "KASHIM_PROGRAMS=java,nginx leaves python3 alone"
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_PROGRAMS='java,python3*' "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$BG" "ESTABLISHED" "$WANT" "KASHIM_PROGRAMS='java,python3*' covers python3.11"
	need_cmd curl || return
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_SKIP_PROGRAMS=curl curl -s -o /dev/null -m 30 --no-keepalive "http://127.0.0.1:$port/"
	expect_socket "$BG" "ESTABLISHED" "$OFF" "KASHIM_SKIP_PROGRAMS=curl leaves curl alone"
}

# redis-server sets its own keepalive on every client (tcp-keepalive 300:
# idle 300 s, interval 100 s, 3 probes).  Respect keeps it; force does not.
redis_case() {
	local mode=$1 want=$2 port
	port=$(free_port)
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_MODE="$mode" KASHIM_DEBUG=1 \
		redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
	local server=$BG
	wait_listen "$port" || { fail "the scene did not get ready: redis-server did not start within 60 s: $(tail -3 "$TMP/bg.$server.log")"; return; }
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$server" "state=ESTABLISHED local=[^ ]*:$port " "$want" "redis-server, KASHIM_MODE=$mode"
}

test_force_mode_redis() {
	need_cmd redis-server || return
	redis_case respect "keepalive=1 idle=300 interval=100 count=3 user_timeout=81000"
	redis_case force "$WANT"
	if grep -q 'KASHIM_MODE=force: the program.s keepalive change not applied' "$TMP"/bg.*.log; then
		ok "force mode reports each refused call under KASHIM_DEBUG"
	else
		fail "no debug line for the refused calls"
	fi
}

test_force_mode_curl_and_off() {
	need_cmd curl || return
	local port
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	wait_listen "$port" || { fail "the scene did not get ready: no server within 60 s"; return; }
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_MODE=force curl -s -o /dev/null -m 30 --keepalive-time 5 "http://127.0.0.1:$port/"
	expect_socket "$BG" "ESTABLISHED" "$WANT" "curl --keepalive-time 5 under force gets kashim's values"
	bg env LD_PRELOAD="$LIB" "${KENV[@]}" KASHIM_MODE=force "$PY" -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $port))
r = s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 999)
time.sleep(30)"
	expect_socket "$BG" "ESTABLISHED" "$WANT" "a program switching keepalive off under force: still on"
}

test_config_file() {
	local port
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	wait_listen "$port" || { fail "the scene did not get ready: no server within 60 s"; return; }
	printf 'idle = 50\ninterval = 11\ncount = 4\n[program curl]\nidle = 60\n[program python3*]\nidle = 21\n' > "$TMP/k.conf"
	bg env LD_PRELOAD="$LIB" KASHIM_CONFIG="$TMP/k.conf" "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=21 interval=11 count=4 user_timeout=65000" \
		"KASHIM_CONFIG: global settings and the [program python3*] section"
	bg env LD_PRELOAD="$LIB" KASHIM_CONFIG="$TMP/k.conf" KASHIM_IDLE=37 "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$BG" "ESTABLISHED" "$WANT" "the environment overrides the file"
	printf 'idle = 50\nidle = 10x\n' > "$TMP/bad.conf"
	env LD_PRELOAD="$LIB" KASHIM_CONFIG="$TMP/bad.conf" "$PY" -c 'print("ran")' > "$TMP/out" 2> "$TMP/err"
	if [ "$(cat "$TMP/out")" = ran ] && [ "$(cat "$TMP/err")" = "kashim: $TMP/bad.conf:2: idle=\"10x\" ignored (unexpected characters after the number); accepted: 1s to 32767s, as 45, 45s, 2m or 1h; line ignored" ]; then
		ok "a bad line: one message with file and line, the program runs"
	else
		fail "out '$(cat "$TMP/out")' err '$(cat "$TMP/err")'"
	fi
}

# /etc/kashim.conf, for hosts that preload through /etc/ld.so.preload: a
# private mount namespace puts a copy of /etc with the file in place.
test_etc_kashim_conf() {
	need_root || return
	local port
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	wait_listen "$port" || { fail "the scene did not get ready: no server within 60 s"; return; }
	mkdir "$TMP/etc"
	cp -a /etc/. "$TMP/etc/"
	printf 'idle = 23\ncount = 2\n' > "$TMP/etc/kashim.conf"
	bg unshare -m sh -c "mount --bind '$TMP/etc' /etc && exec env LD_PRELOAD='$LIB' '$PY' '$HELPERS/hold.py' client 127.0.0.1 $port"
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=23 interval=15 count=2 user_timeout=53000" \
		"/etc/kashim.conf applies when no KASHIM_* variable is set"
	bg unshare -m sh -c "mount --bind '$TMP/etc' /etc && exec env LD_PRELOAD='$LIB' KASHIM_COUNT=4 '$PY' '$HELPERS/hold.py' client 127.0.0.1 $port"
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=15 interval=15 count=4 user_timeout=75000" \
		"and not when a KASHIM_* variable is"
}

test_libkeepalive_and_libdontdie_variables() {
	local port
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	wait_listen "$port" || { fail "the scene did not get ready: no server within 60 s"; return; }
	bg env LD_PRELOAD="$LIB" KEEPIDLE=33 KEEPINTVL=4 KEEPCNT=5 "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=33 interval=4 count=5 user_timeout=53000" "libkeepalive's KEEPIDLE/KEEPINTVL/KEEPCNT"
	bg env LD_PRELOAD="$LIB" DD_TCP_KEEPALIVE_TIME=44 DD_TCP_KEEPALIVE_INTVL=6 DD_TCP_KEEPALIVE_PROBES=2 "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$BG" "ESTABLISHED" "keepalive=1 idle=44 interval=6 count=2 user_timeout=56000" "libdontdie's DD_TCP_KEEPALIVE_*"
	bg env LD_PRELOAD="$LIB" KEEPALIVE=skip "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$BG" "ESTABLISHED" "$OFF" "KEEPALIVE=skip"
	bg env LD_PRELOAD="$LIB" DD_USE_KEEPALIVE=0 "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$BG" "ESTABLISHED" "$OFF" "DD_USE_KEEPALIVE=0"
	env LD_PRELOAD="$LIB" KEEPIDLE=junk DD_DEBUG=1 "$PY" -c 'import socket; socket.socket()' 2> "$TMP/err"
	if grep -qx 'kashim: KEEPIDLE="junk" ignored (not a number); accepted: 1s to 32767s, as 45, 45s, 2m or 1h; it is ignored' "$TMP/err" &&
		grep -q '^kashim\[[0-9]*\]: fd [0-9]* (socket): keepalive set: idle 15s' "$TMP/err"; then
		ok "bad KEEPIDLE: one message; DD_DEBUG=1 turns on debug lines"
	else
		fail "$(cat "$TMP/err")"
	fi
}

test_bad_policy_values_from_a_real_program() {
	env LD_PRELOAD="$LIB" KASHIM_ONLY=10.0.0.0/33 KASHIM_SCOPE=clients KASHIM_MODE=forced "$PY" -c '
import socket; s = socket.socket(); print(s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))' > "$TMP/out" 2> "$TMP/err"
	if [ "$(cat "$TMP/out")" = 1 ] && [ "$(wc -l < "$TMP/err")" -eq 3 ] &&
		grep -qx 'kashim: KASHIM_ONLY="10.0.0.0/33" ignored (not an address, network or port); accepted: comma-separated addresses, networks and ports, as 10.0.0.0/8, ::1, :5432, :8000-8999, 10.1.2.3:5432, \[fd00::/8\]:443; using the default (none: every connection)' "$TMP/err" &&
		grep -qx 'kashim: KASHIM_SCOPE="clients" ignored (not a recognised word); accepted: all (or both), client or server; using the default all' "$TMP/err" &&
		grep -qx 'kashim: KASHIM_MODE="forced" ignored (not a recognised word); accepted: respect or force; using the default respect' "$TMP/err"; then
		ok "three bad policy values: three lines, defaults in force, socket configured"
	else
		fail "out '$(cat "$TMP/out")' err '$(cat "$TMP/err")'"
	fi
}

run_tests
