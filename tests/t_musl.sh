# SPDX-License-Identifier: MIT
# The musl build (libkashim-musl.so, for Alpine containers) with programs
# linked against musl: the probe's cases, the kernel's view from outside,
# the messages, and kashim doctor/run choosing the musl build.
. "$(dirname "$0")/lib.sh"

MLIB=$ROOT/libkashim-musl.so
MPROBE=$ROOT/tests/probe-musl

build() {
	need_cmd musl-gcc || return 1
	make -s -B -C "$ROOT" musl > "$TMP/build" 2>&1 && return 0
	fail "make musl: $(head -5 "$TMP/build")"
	return 1
}

test_musl_probe_cases() {
	build || return
	if readelf -l "$MPROBE" | grep -q 'ld-musl'; then ok "the probe is linked against musl"; else fail "not musl"; fi
	local c
	for c in tcp nontcp errno accept connect threads fork mptcp stress signals forkstorm vfork seccomp; do
		env LD_PRELOAD="$MLIB" "${KENV[@]}" "$MPROBE" "$c" 37 11 4 81000 2> "$TMP/err" | sed 's/^\(ok\|not ok\|skip\) - probe /\1 - musl probe /'
		[ -s "$TMP/err" ] && fail "musl probe $c wrote to stderr: $(head -c 200 "$TMP/err")"
	done
	return 0
}

test_musl_process_read_from_outside() {
	build || return
	bg env LD_PRELOAD="$MLIB" "${KENV[@]}" "$MPROBE" hold 37 11 4 81000
	expect_socket "$BG" "state=ESTABLISHED" "$WANT" "a musl process's connection, read with sockpeek"
	expect_socket "$BG" "state=LISTEN" "$WANT" "and its listener"
	"$ROOT/kashim" inspect "$BG" > "$TMP/out" 2>&1
	if [ "$(grep -cE 'ESTABLISHED .* on +37s +11s +4 +81000ms in ' "$TMP/out")" -eq 2 ]; then
		ok "kashim inspect agrees on both ends"
	else
		fail "$(cat "$TMP/out")"
	fi
}

test_musl_messages() {
	build || return
	env LD_PRELOAD="$MLIB" KASHIM_IDLE=10x "$MPROBE" tcp 15 15 9 150000 > /dev/null 2> "$TMP/err"
	if [ "$(cat "$TMP/err")" = 'kashim: KASHIM_IDLE="10x" ignored (unexpected characters after the number); accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s' ]; then
		ok "the same message from the musl build"
	else
		fail "$(cat "$TMP/err")"
	fi
}

test_doctor_and_run_choose_the_musl_build() {
	build || return
	"$ROOT/kashim" doctor "$MPROBE" > "$TMP/out"
	if [ $? -eq 0 ] && grep -q 'yes, with the musl build libkashim-musl.so' "$TMP/out"; then
		ok "doctor: a musl program needs libkashim-musl.so"
	else
		fail "$(cat "$TMP/out")"
	fi
	env -u LD_PRELOAD "$ROOT/kashim" run --idle 37 --interval 11 --count 4 "$MPROBE" tcp 37 11 4 81000 > "$TMP/out" 2>&1
	if [ $? -eq 0 ] && ! grep -q '^not ok' "$TMP/out" && grep -q '^ok' "$TMP/out"; then
		ok "kashim run gives a musl program the musl build ($(grep -c '^ok' "$TMP/out") checks)"
	else
		fail "$(head -5 "$TMP/out")"
	fi
}

run_tests
