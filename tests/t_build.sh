# SPDX-License-Identifier: MIT
# The library as built: what it exports, what it needs at run time, and a
# strict warning set that stays silent.
. "$(dirname "$0")/lib.sh"

test_exports_only_interposed_calls() {
	local got
	got=$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBWVi]$/ {print $3}' | sort | tr '\n' ' ')
	if [ "$got" = "accept accept4 connect sendmmsg sendmsg sendto setsockopt socket " ]; then
		ok "exports: $got"
	else
		fail "exports: $got"
	fi
}

test_runtime_dependencies() {
	local deps
	deps=$(readelf -d "$LIB" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
	case "$deps" in
	"libc.so.6 " | "libc.so.6 libdl.so.2 " | "libdl.so.2 libc.so.6 ") ok "needs only: $deps" ;;
	*) fail "needs: $deps" ;;
	esac
}

test_zero_warnings() {
	need_cmd "${CC:-cc}" || return
	local out
	out=$(make -s -B -C "$ROOT" LIB="$TMP/libkashim.so" "$TMP/libkashim.so" 2>&1)
	if [ -z "$out" ] && [ -s "$TMP/libkashim.so" ]; then
		ok "make -B builds libkashim.so with no warnings"
	else
		fail "build output: $out"
	fi
}

run_tests
