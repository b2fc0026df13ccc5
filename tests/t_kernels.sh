#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run: timeout 1200 (four guests under TCG, 4-5 min on a loaded machine, and a first run downloads Debian's two kernels)
# The kernel matrix: each kernel of tests/helpers/kernels.sh (Debian 12's
# 6.1 and 6.12 packages, the shared images) booted under qemu, one at a
# time, running tests/helpers/kernel_checks.sh in the host's root: the
# library under LD_PRELOAD and the cgroup mode, judged on real sockets.
# One line per kernel and check group; "# KERNEL: boot ..." gives the
# guest's boot time (to the checks' start) and the whole run's.  The
# facts each kernel shows (respect kept or acting as force, BPF memory
# charged to RLIMIT_MEMLOCK or not) must be what docs/kernels.md's table
# says, and the oldest kernel there the one attach --help names.
# KERNEL_BOOT_LIMIT (s) bounds each boot.  make check-kernels runs the
# cgroup test files whole in each kernel (tests/helpers/check_kernels.sh).
. "$(dirname "$0")/lib.sh"
. "$HELPERS/kernels.sh"

LIMIT=${KERNEL_BOOT_LIMIT:-300}

# missing WHY: in CI (TEST_REQUIRE_ALL=1) a missing kernel is a failure.
missing() {
	if [ "${TEST_REQUIRE_ALL:-0}" = 1 ]; then fail "$*"; else skip "$*"; fi
}

# summarize LABEL OUT: one line per check group of the guest's output
# (a probe case, or kernel_checks.sh's test), ok with its count, or not ok with its first failure; a
# skip inside a guest is a failure (everything is there).
summarize() {
	awk -v k="$1" '
		/^(ok|not ok|skip) - / {
			line = $0; sub(/^(ok|not ok|skip) - /, "", line)
			n = split(line, part, ": ")
			key = part[1] == "kernel" ? part[1] ": " part[2] : part[1]
			if (!(key in count)) order[++groups] = key
			count[key]++
			if ($1 != "ok" && !(key in bad)) bad[key] = $0
		}
		END {
			for (i = 1; i <= groups; i++) {
				key = order[i]
				if (key in bad) print "not ok - kernels: " k ": " key ": " bad[key]
				else print "ok - kernels: " k ": " key " (" count[key] " checks)"
			}
			if (!groups) print "not ok - kernels: " k ": the guest ran no check"
		}' "$2"
}

test_matrix() {
	need_root || return
	need_cmd qemu-system-x86_64 busybox capsh apt-get dpkg-deb || return
	trap 'kernel_cleanup; cleanup' EXIT
	trap 'exit 143' TERM INT HUP
	if ! kernel_matrix > "$TMP/matrix" 2> "$TMP/matrix.err"; then
		missing "the kernel matrix is incomplete: $(cat "$TMP/matrix.err")"
		return
	fi
	local label image moddir facts
	: > "$TMP/measured"
	while read -r label image moddir; do
		if ! kernel_boot "$label" "$image" "$moddir" "$LIMIT" "$HELPERS/kernel_checks.sh" < /dev/null; then
			fail "$label: $GUEST_WHY"
			continue
		fi
		summarize "$label" "$GUEST/out" | tee "$TMP/summary"
		facts=$(sed -n 's/^# fact //p' "$GUEST/out" | tr '\n' ' ')
		echo "# $label: boot ${BOOT_S:-?} s (to the checks' start, $ACCEL), whole run $RUN_S s; $facts"
		echo "$label $(grep -c '^not ok' "$TMP/summary") $facts" >> "$TMP/measured"
	done < "$TMP/matrix"
	"$KASHIM_BIN" attach --help > "$TMP/help" 2>&1
	if "$PY" "$HELPERS/kerneltable.py" "$ROOT/docs/kernels.md" "$TMP/measured" "$TMP/help" > "$TMP/table" 2>&1; then
		ok "docs/kernels.md's table is what the matrix measured ($(wc -l < "$TMP/measured") kernels)"
	else
		fail "docs/kernels.md's table and the matrix differ: $(tr '\n' ';' < "$TMP/table")"
	fi
}

KASHIM_BIN=${TEST_KASHIM:-$ROOT/kashim}
run_tests
