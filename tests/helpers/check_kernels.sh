#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make check-kernels: the cgroup mode's test files, whole, in each kernel
# of the matrix (tests/helpers/kernels.sh), one guest at a time, under
# tests/run there.  Each guest's lines are shown with the kernel's name
# before them, then its tally and times; the last line is the tally of
# all.  KERNEL_FILES: other test files; KERNEL_ONLY: the kernels whose
# name matches this extended regex (5.10.265, debian-6.1.0-57-amd64...);
# KERNEL_BOOT_LIMIT (s): the bound of one boot (3600).
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/lib.sh
. "$HELPERS/kernels.sh"
read -r -a files <<< "${KERNEL_FILES:-tests/t_cgroup.sh tests/t_cgroup_policy.sh}"
TMP=$(mktemp -d)
trap 'kernel_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 143' TERM INT HUP
kernel_matrix > "$TMP/matrix" || { echo "0 passed, 1 failed"; exit 1; }
# tests/run's bound of a file, 600 s, is for this machine; under TCG the
# cgroup files take 5-15 minutes
GUEST_ENV=(TEST_FILE_SECONDS=1500)
passed=0 failed=0
while read -r label image moddir; do
	[[ $label =~ ${KERNEL_ONLY:-.} ]] || continue
	echo "# $label: ${files[*]}"
	if kernel_boot "$label" "$image" "$moddir" "${KERNEL_BOOT_LIMIT:-3600}" tests/run "${files[@]}" < /dev/null; then
		sed "s/^/[$label] /" "$GUEST/out"
	else
		sed "s/^/[$label] /" "$GUEST/out" 2> /dev/null
		echo "[$label] not ok - $GUEST_WHY"
	fi
	p=$(grep -c '^ok - ' "$GUEST/out" 2> /dev/null)
	n=$(grep -c -e '^not ok - ' -e '^skip - ' "$GUEST/out" 2> /dev/null)
	[ -e "$GUEST/share/status" ] && [ "$(cat "$GUEST/share/status")" = 0 ] || n=$((n + 1))
	echo "# $label: $p passed, $n failed or skipped; boot ${BOOT_S:-?} s ($ACCEL), whole run $RUN_S s"
	passed=$((passed + p)) failed=$((failed + n))
done < "$TMP/matrix"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
