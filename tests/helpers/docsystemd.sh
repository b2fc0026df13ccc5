#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# docsystemd.sh WORK [SRC]: runs WORK/block.sh (a block of README.md or
# docs/ marked "systemd", written out by tests/helpers/doctest.py) under a
# real systemd as PID 1: this machine's root booted with systemd-nspawn by
# tests/helpers/nspawn.sh, as tests/t_systemd.sh boots it (the unified
# layout, cgroup2 at /sys/fs/cgroup; bpf(2) let through), with kashim
# installed by make install from the built tree SRC at /usr/local, the
# host's /etc/systemd/system replaced by an empty scratch directory and
# /etc/kashim.conf an empty scratch file.  The block runs as the oneshot
# driver unit, from an empty directory, with a login shell's PATH.
#
# Prints the block's output; the exit status is the block's, 77 (with the
# reason) when no container can be booted here, 98 when the boot failed.
# The boot is bounded (DOCSYSTEMD_LIMIT, 120 s) and its cgroup killed and
# removed afterwards.
set -u
work=$1
export TESTS_ROOT=${2:-${TESTS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}}
. "$TESTS_ROOT/tests/lib.sh"
. "$HELPERS/nspawn.sh"
T="docs: systemd"
TMP=$(mktemp -d)
trap cleanup EXIT

if ! why=$(nspawn_usable); then
	echo "${why#skip - "$T": }"
	exit 77
fi
nspawn_prepare || exit 98
NSPAWN_EXTRA=(--bind="$work")
nspawn_plan
cat > "$SD/res/plan.sh" <<-PLAN
cd "\$(mktemp -d)"
export HOME=\$PWD PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bash '$work/block.sh' > /kt-res/block.out 2>&1 < /dev/null
echo \$? > /kt-res/block.rc
PLAN
nspawn_boot doc unified bpf "${DOCSYSTEMD_LIMIT:-120}" > "$TMP/boot.log"
log=$(cat "$TMP/boot.log")
if [ ! -s "$SD/res/block.rc" ]; then
	echo "docsystemd: the block did not run under systemd: $log"
	exit 98
fi
if grep -q '^not ok' <<< "$log"; then
	echo "docsystemd: $(grep '^not ok' <<< "$log")"
	exit 98
fi
cat "$SD/res/block.out"
exit "$(cat "$SD/res/block.rc")"
