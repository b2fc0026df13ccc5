# SPDX-License-Identifier: MIT
# Layer 2: a C probe under LD_PRELOAD reads every option back with getsockopt.
. "$(dirname "$0")/lib.sh"

test_tcp_sockets() { probe_case tcp; }
test_non_tcp_untouched() { probe_case nontcp; }
test_errno_and_return_values() { probe_case errno; }
test_accept_paths() { probe_case accept; }
test_connect_paths_and_app_wins() { probe_case connect; }
test_eight_threads() { probe_case threads; }
test_fork_and_exec() { probe_case fork; }
test_mptcp() { probe_case mptcp; }

# A number once held by a socket that is not TCP (UDP, AF_UNIX, netlink),
# now held by a TCP socket that came by a route no wrapper sees: close()
# then syscall(SYS_socket), dup2(), dup3(), fcntl(F_DUPFD), SCM_RIGHTS,
# close_range(), and a listener on such a number (issue 21).  Without
# filters and under each kind of filter.
stale_case() {
	local label=${*:-no filter}
	"${SHIM[@]}" "$@" "$PROBE" stale 37 11 4 81000 2> "$TMP/err" |
		awk -v label="$label" '/^(not )?ok - |^skip - / { sub(/: /, ": " label ": ") } { print }'
	if [ -s "$TMP/err" ]; then
		fail "$label: the shim wrote to stderr with a good configuration: $(head -c 300 "$TMP/err")"
	fi
}

test_stale_marks() {
	stale_case
	stale_case KASHIM_SKIP=10.0.0.0/8
	stale_case KASHIM_ONLY=127.0.0.0/8
	stale_case KASHIM_SCOPE=client
	stale_case KASHIM_SCOPE=server
	stale_case KASHIM_MODE=force KASHIM_SKIP=10.0.0.0/8
}

test_defaults() {
	env LD_PRELOAD="$LIB" "$PROBE" tcp 15 15 9 150000 | grep -m1 -E '^(not )?ok'
}

test_user_timeout_off_leaves_kernel_value() {
	env LD_PRELOAD="$LIB" KASHIM_USER_TIMEOUT=off "$PROBE" tcp 15 15 9 0 | grep -m1 -E '^(not )?ok'
}

test_user_timeout_fixed() {
	env LD_PRELOAD="$LIB" KASHIM_USER_TIMEOUT=1500ms "$PROBE" tcp 15 15 9 1500 | grep -m1 -E '^(not )?ok'
}

test_kashim_off_does_nothing() {
	env LD_PRELOAD="$LIB" KASHIM=off KASHIM_IDLE=bogus KASHIM_TYPO=1 "$PROBE" untouched 0 0 0 0 2> "$TMP/err"
	if [ -s "$TMP/err" ]; then fail "KASHIM=off still wrote: $(cat "$TMP/err")"; else ok "silent"; fi
}

test_without_shim_probe_fails() {
	# The probe must be able to fail: without the shim the kernel defaults show.
	if "$PROBE" tcp 37 11 4 81000 | grep -q '^not ok'; then
		ok "probe reports a socket without kashim as wrong"
	else
		fail "probe passed without the shim"
	fi
}

run_tests
