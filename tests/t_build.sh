# SPDX-License-Identifier: MIT
# The library as built: what it exports, what it needs at run time, and a
# strict warning set that stays silent.
. "$(dirname "$0")/lib.sh"

test_exports_only_interposed_calls() {
	local got
	got=$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBWVi]$/ {print $3}' | sort | tr '\n' ' ')
	if [ "$got" = "accept accept4 close close_range closefrom connect dup2 dup3 sendmmsg sendmsg sendto setsockopt socket " ]; then
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

# The layers of the command: the BPF side (cli/cgbpf.c) links with the
# files below it (cli/files.c, cli/cgroupfs.c, config.c) and nothing of the
# commands above it (cli/cgroup.c called into it and it called back into
# cli/cgroup.c for the escaper: issue 21).
test_bpf_layer_depends_on_nothing_above() {
	need_cmd "${CC:-cc}" || return
	local below=(cli/files.c cli/cgroupfs.c config.c)
	if (cd "$ROOT" && "${CC:-cc}" -std=gnu11 -fPIC -shared -Wl,--no-undefined -o "$TMP/cgbpf.so" \
		cli/cgbpf.c "${below[@]}") > "$TMP/link" 2>&1; then
		ok "cli/cgbpf.c links with ${below[*]} alone"
	else
		fail "cli/cgbpf.c needs more than ${below[*]}: $(grep -o "undefined reference to [^ ]*" "$TMP/link" | sort -u | tr '\n' ' ')"
	fi
}

run_tests
