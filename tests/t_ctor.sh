# SPDX-License-Identifier: MIT
# Another preloaded library makes a socket from its constructor, before or
# after kashim's constructor has run: either order of LD_PRELOAD works.
. "$(dirname "$0")/lib.sh"

early_case() {
	local what=$1 preload=$2
	env LD_PRELOAD="$preload" EARLY_REPORT="$TMP/early" "${KENV[@]}" "$PY" -c pass 2> "$TMP/err"
	if [ "$(cat "$TMP/early" 2> /dev/null)" = "$WANT" ] && [ ! -s "$TMP/err" ]; then
		ok "$what"
	else
		fail "$what: early socket has '$(cat "$TMP/early" 2> /dev/null)', stderr '$(cat "$TMP/err")'"
	fi
}

test_other_preload_first() {
	early_case "LD_PRELOAD=libearly.so:libkashim.so" "$ROOT/tests/libearly.so:$LIB"
}

test_kashim_first() {
	early_case "LD_PRELOAD=libkashim.so:libearly.so" "$LIB:$ROOT/tests/libearly.so"
}

test_loaded_twice() {
	# A launcher that adds kashim to an LD_PRELOAD that already has it.
	early_case "LD_PRELOAD naming libkashim.so twice" "$LIB:$ROOT/tests/libearly.so:$LIB"
}

run_tests
