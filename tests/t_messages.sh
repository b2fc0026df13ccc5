# SPDX-License-Identifier: MIT
# What an operator sees on stderr: nothing when all is well, exactly one
# "kashim:" line per bad variable, and the program runs on unchanged.
. "$(dirname "$0")/lib.sh"

SOCKET_VALUES='import socket
s = socket.socket()
T = socket.IPPROTO_TCP
print(s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), s.getsockopt(T, socket.TCP_KEEPIDLE),
      s.getsockopt(T, socket.TCP_KEEPINTVL), s.getsockopt(T, socket.TCP_KEEPCNT),
      s.getsockopt(T, socket.TCP_USER_TIMEOUT))'

# run_py ENV...: python3 under kashim with ENV; stdout in $TMP/out,
# stderr in $TMP/err, exit status in $rc.
run_py() {
	env LD_PRELOAD="$LIB" "$@" "$PY" -c "$SOCKET_VALUES" > "$TMP/out" 2> "$TMP/err"
	rc=$?
}

# expect_run WANT_OUT WANT_ERR WHAT ENV...
expect_run() {
	local want_out=$1 want_err=$2 what=$3
	shift 3
	run_py "$@"
	if [ "$rc" -ne 0 ]; then
		fail "$what: python3 exited $rc: $(cat "$TMP/err")"
	elif [ "$(cat "$TMP/out")" != "$want_out" ]; then
		fail "$what: socket has '$(cat "$TMP/out")', want '$want_out'"
	elif [ "$(cat "$TMP/err")" != "$want_err" ]; then
		fail "$what: stderr is '$(cat "$TMP/err")', want '$want_err'"
	else
		ok "$what"
	fi
}

test_good_configuration_is_silent() {
	expect_run "1 37 11 4 81000" "" "good values, no output" "${KENV[@]}"
	expect_run "1 15 15 9 150000" "" "defaults, no output"
	expect_run "1 15 15 9 150000" "" "empty values count as unset" \
		KASHIM_IDLE= KASHIM_COUNT= KASHIM_USER_TIMEOUT= KASHIM=
}

test_bad_idle() {
	expect_run "1 15 11 4 59000" \
		'kashim: KASHIM_IDLE="10x" ignored (unexpected characters after the number); accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s' \
		"KASHIM_IDLE=10x: one line, default idle, other settings kept" \
		KASHIM_IDLE=10x KASHIM_INTERVAL=11 KASHIM_COUNT=4
}

test_bad_count_and_user_timeout() {
	expect_run "1 37 15 9 172000" \
		'kashim: KASHIM_COUNT="99999999999999999999" ignored (out of range); accepted: a whole number from 1 to 127; using the default 9
kashim: KASHIM_USER_TIMEOUT="-1" ignored (negative); accepted: auto, off, or 1ms to 2147483647ms, as 30, 30s, 1500ms, 2m or 1h; using the default auto' \
		"two bad variables: two lines" \
		KASHIM_IDLE=37 KASHIM_COUNT=99999999999999999999 KASHIM_USER_TIMEOUT=-1
}

test_bad_switch() {
	expect_run "1 15 15 9 150000" \
		'kashim: KASHIM="maybe" ignored (not a recognised word); accepted: on/off, 1/0, yes/no, true/false; using the default on' \
		"KASHIM=maybe: one line, kashim stays on" KASHIM=maybe
}

test_not_utf8_and_huge() {
	expect_run "1 15 15 9 150000" \
		'kashim: KASHIM_IDLE="\xff\xfe" ignored (not valid UTF-8); accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s' \
		"bytes that are not UTF-8 are shown escaped" $'KASHIM_IDLE=\xff\xfe'
	local big
	big=$(head -c 102400 /dev/zero | tr '\0' 7)
	run_py KASHIM_INTERVAL="$big"
	if [ "$(wc -l < "$TMP/err")" -eq 1 ] && [ "$(wc -c < "$TMP/err")" -lt 300 ] &&
		grep -q '^kashim: KASHIM_INTERVAL="7777.*\.\.\." ignored (out of range)' "$TMP/err" &&
		[ "$(cat "$TMP/out")" = "1 15 15 9 150000" ]; then
		ok "a 100 KB value gets one short line"
	else
		fail "100 KB value: $(head -c 400 "$TMP/err")"
	fi
}

test_unknown_variable() {
	expect_run "1 15 15 9 150000" \
		'kashim: KASHIM_IDEL is not a kashim variable, ignored (did you mean KASHIM_IDLE?)' \
		"a typo is named, with a suggestion" KASHIM_IDEL=30
}

test_program_output_and_status_untouched() {
	local out
	out=$(env LD_PRELOAD="$LIB" KASHIM_IDLE=bad "$PY" -c 'import sys; print("hello"); sys.exit(3)' 2> /dev/null)
	rc=$?
	if [ "$out" = hello ] && [ "$rc" -eq 3 ]; then
		ok "a bad variable changes neither the program's output nor its exit status"
	else
		fail "output '$out', status $rc"
	fi
}

test_debug_lines() {
	run_py KASHIM_DEBUG=1 "${KENV[@]}"
	if grep -qE "^kashim\[[0-9]+\]: loaded: idle 37s, interval 11s, count 4, user timeout 81000ms \(auto\)$" "$TMP/err" &&
		grep -qE "^kashim\[[0-9]+\]: fd [0-9]+ \(socket\): keepalive set: idle 37s, interval 11s, count 4, user timeout 81000ms$" "$TMP/err" &&
		! grep -v '^kashim\[' "$TMP/err" | grep -q .; then
		ok "KASHIM_DEBUG=1 reports the load and each socket, one line each"
	else
		fail "debug output: $(cat "$TMP/err")"
	fi
}

test_debug_reports_program_choice() {
	env LD_PRELOAD="$LIB" KASHIM_DEBUG=1 "$PY" -c '
import socket
l = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(l.getsockname())
a, _ = l.accept()' 2> "$TMP/err"
	if grep -qE '^kashim\[[0-9]+\]: fd [0-9]+ \(connect\): configured at socket\(\)$' "$TMP/err" &&
		grep -qE '^kashim\[[0-9]+\]: fd [0-9]+ \(accept4?\): keepalive already on, left as it is$' "$TMP/err"; then
		ok "debug says why connect() and accept() left a socket alone"
	else
		fail "debug output: $(cat "$TMP/err")"
	fi
}

run_tests
