# SPDX-License-Identifier: MIT
# Stress and faults: many threads, signal handlers inside socket(), fork
# storms and exec chains, vfork, the highest descriptors, setsockopt denied
# by seccomp, other interposers stacked before and after kashim, memory
# pressure at load.
. "$(dirname "$0")/lib.sh"


test_sixteen_threads() { probe_case stress; }
test_signal_handlers_inside_socket() { probe_case signals; }
test_fork_storm_and_exec_chain() { probe_case forkstorm; }
test_vfork() { probe_case vfork; }
test_highest_descriptors() { probe_case highfd; }
test_setsockopt_denied_by_seccomp() { probe_case seccomp; }

test_seccomp_reported_under_debug() {
	env LD_PRELOAD="$LIB" KASHIM_DEBUG=1 "$PROBE" seccomp 15 15 9 150000 > /dev/null 2> "$TMP/err"
	if grep -qE '^kashim\[[0-9]+\]: fd [0-9]+ \(socket\): SO_KEEPALIVE not set: EPERM \(errno 1\)$' "$TMP/err"; then
		ok "each refused option is reported under KASHIM_DEBUG"
	else
		fail "$(head -5 "$TMP/err")"
	fi
}

stacked_case() {
	local what=$1 preload=$2
	env LD_PRELOAD="$preload" WRAP_REPORT="$TMP/wrap" "${KENV[@]}" "$PROBE" connect 37 11 4 81000 > "$TMP/out"
	if ! grep -q '^not ok' "$TMP/out" && [ "$(grep -c '^ok' "$TMP/out")" -ge 6 ] &&
		[ "$(cat "$TMP/wrap" 2> /dev/null || echo 0)" -gt 0 ]; then
		ok "$what: kashim's options set, the other interposer saw $(cat "$TMP/wrap") calls"
	else
		fail "$what: $(grep '^not ok' "$TMP/out" | head -2) wrap=$(cat "$TMP/wrap" 2> /dev/null)"
	fi
}

test_another_interposer_before() { stacked_case "libwrap.so then libkashim.so" "$ROOT/tests/libwrap.so:$LIB"; }
test_another_interposer_after() { stacked_case "libkashim.so then libwrap.so" "$LIB:$ROOT/tests/libwrap.so"; }

test_memory_pressure_at_load() {
	# 40 KiB (the buffer is the file's size): its allocation fails
	{ printf 'idle = 21\n'; head -c 40960 /dev/zero | tr '\0' '#'; } > "$TMP/k.conf"
	env LD_PRELOAD="$ROOT/tests/libfailbig.so:$LIB" KASHIM_CONFIG="$TMP/k.conf" "${KENV[@]}" \
		"$PROBE" tcp 37 11 4 81000 > "$TMP/out" 2> "$TMP/err"
	if [ "$(cat "$TMP/err")" = "kashim: cannot read the configuration file \"$TMP/k.conf\": out of memory; it is ignored" ] &&
		! grep -q '^not ok' "$TMP/out" && grep -q '^ok' "$TMP/out"; then
		ok "no memory for the file: one message, the environment's settings apply, the program runs"
	else
		fail "err '$(cat "$TMP/err")' out '$(grep -m2 '^not ok' "$TMP/out")'"
	fi
}

run_tests
