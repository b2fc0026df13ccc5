# SPDX-License-Identifier: MIT
# TCP Fast Open (issue 21): a client that opens its connection with
# sendto(), sendmsg() or sendmmsg() and MSG_FASTOPEN never calls connect().
# Under KASHIM_SKIP, KASHIM_ONLY or KASHIM_SCOPE, which defer the decision
# to connect(), such a connection must get the same decision as a
# connect() to the same address; a send the kernel refuses opens nothing
# and must change nothing (issue 29).  Each scene is a private network
# namespace (unshare -n) with net.ipv4.tcp_fastopen=3 set inside it, never
# on the host: a plain Fast Open server (python3, no kashim), and a client
# under kashim, read from outside (sockpeek).
. "$(dirname "$0")/lib.sh"

OFF="keepalive=0"
PORT=4711 # inside a namespace of its own: no other test can hold it

can_run() { need_root && need_cmd unshare ip sysctl ss; }

# scene CMD...: in a fresh network namespace with Fast Open on
# (net.ipv4.tcp_fastopen=$TFO, 3 unless set: clients and servers), the
# server on 127.0.0.1:$PORT, then CMD (exec'd: $BG is its pid, its output
# in $TMP/bg.$BG.log).
scene() {
	bg unshare -n bash -c '
		port=$1 py=$2 helper=$3 tfo=$4
		shift 4
		ip link set lo up && sysctl -q -w net.ipv4.tcp_fastopen="$tfo" || exit 1
		"$py" "$helper" server "$port" &
		for i in $(seq 600); do
			ss -Htln "sport = :$port" | grep -q . && exec "$@"
			sleep 0.1
		done
		echo "the Fast Open server did not listen within 60 s"
		exit 1' scene "$PORT" "$PY" "$HELPERS/fastopen.py" "${TFO:-3}" "$@"
}

# client_ready READY WHAT ENV... -- ARG...: fastopen.py ARG... under kashim
# with ENV, in a scene; returns once its output ($log) has a line that
# starts with READY, or fails naming WHAT.
client_ready() {
	local ready=$1 what=$2 env=()
	shift 2
	while [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	shift
	scene env LD_PRELOAD="$LIB" "${KENV[@]}" "${env[@]}" "$PY" "$HELPERS/fastopen.py" "$@"
	log=$TMP/bg.$BG.log
	wait_for 60 grep -q "^$ready" "$log" && return 0
	fail "the scene did not get ready: $what: $(tail -c 300 "$log")"
	return 1
}

# fastopen_case API WANT ENV...: python3 under kashim with ENV opens three
# connections with MSG_FASTOPEN through API; each must carry WANT.
fastopen_case() {
	local api=$1 want=$2 log lines n bad
	shift 2
	client_ready connected "$api ($*)" "$@" -- client "$PORT" "$api" 3 || return
	if ! grep -q '^connected 3 syn_data [1-9]' "$log"; then
		fail "the scene: no connection carried data in its SYN, so the kernel did not use Fast Open: $(cat "$log")"
		return
	fi
	lines=$(peek "$BG" 2>&1 | grep -E "remote=127\.0\.0\.1:$PORT ")
	n=$(grep -c . <<< "$lines")
	bad=$(grep -vF -- "$want" <<< "$lines")
	if [ "$n" -eq 3 ] && [ -z "$bad" ]; then
		ok "$api with MSG_FASTOPEN, $*: 3 connections ($(grep -o 'syn_data [0-9]' "$log") with data in the SYN): $want"
	else
		fail "$api with MSG_FASTOPEN, $*: want 3 connections with '$want', kernel says: $(tr '\n' ';' <<< "$lines")"
	fi
	kill "$BG" $(children "$BG") 2> /dev/null
}

# Blocking and non-blocking sockets (each judged after the call, once the
# kernel opened the connection), under each kind of filter that covers
# 127.0.0.1.
filters_case() {
	local api=$1
	fastopen_case "$api" "$WANT" KASHIM_SKIP=10.0.0.0/8
	fastopen_case "$api" "$WANT" KASHIM_ONLY=127.0.0.0/8
	fastopen_case "$api" "$WANT" KASHIM_SCOPE=client
}

test_sendto_under_filters() { can_run || return; filters_case sendto; }
test_sendto_nonblocking_under_filters() { can_run || return; filters_case sendto-nb; }
test_sendmsg_under_filters() { can_run || return; filters_case sendmsg; }
test_sendmsg_nonblocking_under_filters() { can_run || return; filters_case sendmsg-nb; }

# The filters still decide: a Fast Open connection they do not cover is
# left as the kernel made it, as a connect() would be.
test_filters_still_exclude() {
	can_run || return
	fastopen_case sendto "$OFF" KASHIM_SKIP=127.0.0.1
	fastopen_case sendmsg-nb "$OFF" KASHIM_ONLY=10.0.0.0/8
	fastopen_case sendto-nb "$OFF" KASHIM_SCOPE=server
	fastopen_case sendmsg "$OFF" KASHIM_SKIP=:"$PORT"
}

# refused_case API HOW WANT_ERRNO ENV...: python3 under kashim with ENV
# makes a send with MSG_FASTOPEN through API that the kernel refuses with
# WANT_ERRNO (fastopen.py refused: HOW); the connection named by $PICK (a
# regex on sockpeek's line) is one the filters exclude, so it must keep
# the kernel's defaults.  Before the fix, kashim judged such a send by the
# address it named (sendto, before the call) or as a connection the
# program made (sendmsg, sendmmsg, after it), and switched keepalive on.
refused_case() {
	local api=$1 how=$2 errno=$3 log lines
	shift 3
	client_ready refused "$api $how ($*)" "$@" -- refused "$PORT" "$api" "$how" || return
	if ! grep -q "^refused $how $api $errno\$" "$log"; then
		fail "$api $how: the kernel did not refuse the send with $errno: $(cat "$log")"
		return
	fi
	lines=$(peek "$BG" 2>&1 | grep -E "$PICK")
	if [ "$(grep -c . <<< "$lines")" -eq 1 ] && grep -qF -- "$DEFAULTS" <<< "$lines"; then
		ok "$api with MSG_FASTOPEN refused ($errno) on a connection $how, $*: left as the kernel made it"
	else
		fail "$api with MSG_FASTOPEN refused ($errno) on a connection $how, $*: want one connection with '$DEFAULTS', kernel says: $(tr '\n' ';' <<< "$lines")"
	fi
	kill "$BG" $(children "$BG") 2> /dev/null
}

DEFAULTS="keepalive=0 idle=7200 interval=75 count=9 user_timeout=0"

# An accepted connection the filters exclude (KASHIM_SCOPE=client), and a
# send that names an address they cover: EISCONN, or EFAULT for a pointer
# nothing is mapped at.
test_refused_on_an_accepted_connection() {
	can_run || return
	local api
	for api in sendto sendmsg sendmmsg; do
		PICK="state=ESTABLISHED local=127\.0\.0\.1:$((PORT + 1)) " refused_case "$api" accepted EISCONN KASHIM_SCOPE=client
		PICK="state=ESTABLISHED local=127\.0\.0\.1:$((PORT + 1)) " refused_case "$api" accepted-efault EFAULT KASHIM_SCOPE=client
	done
}

# A connection made to an address the filters exclude, then a send to one
# they cover: EISCONN.
test_refused_on_a_connected_socket() {
	can_run || return
	local api
	for api in sendto sendmsg sendmmsg; do
		PICK="remote=127\.0\.0\.1:$PORT " refused_case "$api" connected EISCONN KASHIM_ONLY=10.0.0.0/8
	done
}

# Fast Open off for clients (net.ipv4.tcp_fastopen=2): a send to a covered
# address gets EOPNOTSUPP and opens nothing; the program then connect()s to
# an excluded one, as a client falling back does.
test_refused_where_fast_open_is_off() {
	can_run || return
	local api
	for api in sendto sendmsg sendmmsg; do
		TFO=2 PICK="remote=127\.0\.0\.1:$PORT " refused_case "$api" disabled EOPNOTSUPP KASHIM_ONLY=10.0.0.0/8
	done
}

test_without_filters() {
	can_run || return
	fastopen_case sendto "$WANT"
	fastopen_case sendmsg-nb "$WANT"
}

# sendmmsg() (python has none), every call blocking and not, and the
# calls' answers (return values, errno, EISCONN on a connected socket,
# UDP with the flag): the C probe, in such a namespace.
probe_fastopen() {
	local label=${*:-no filter} rc
	scene env LD_PRELOAD="$LIB" "${KENV[@]}" "$@" "$PROBE" fastopen 37 11 4 81000
	wait "$BG"
	rc=$?
	[ "$rc" -eq 0 ] || grep -q '^not ok' "$TMP/bg.$BG.log" ||
		fail "$label: the probe ended with status $rc: $(tail -c 300 "$TMP/bg.$BG.log")"
	awk -v label="$label" '/^(not )?ok - |^skip - / { sub(/: /, ": " label ": ") } { print }' \
		"$TMP/bg.$BG.log" | grep -E '^(not )?ok|^skip'
}

test_probe_under_filters() {
	can_run || return
	probe_fastopen KASHIM_SKIP=10.0.0.0/8
	probe_fastopen KASHIM_ONLY=127.0.0.1
	probe_fastopen KASHIM_SCOPE=client
	probe_fastopen
}

run_tests
