#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# docns.sh SCRIPT STAGE: runs the bash SCRIPT (one block of README.md or
# docs/, written out by tests/helpers/doctest.py) the way a reader would run
# it on a host where kashim is installed, without touching this host:
#
#   - private mount, network, pid and cgroup namespaces (as root; with a
#     user namespace otherwise, where blocks marked "root" are not run);
#   - kashim installed onto a tmpfs over /usr/local, copied from STAGE,
#     where doctest.py ran `make install PREFIX=/usr/local DESTDIR=STAGE`
#     once for every block;
#   - /etc and /var are overlays: writes land in a scratch upper layer;
#   - cgroup2 at /sys/fs/cgroup, rooted at a cgroup of this run's own
#     (removed afterwards, with every process and attachment in it);
#   - lo up; the working directory an empty scratch directory, or
#     $DOC_CWD when set (a copy of the source tree, for make commands);
#   - with DOCNS_DOCKER=1 (the "docker" flag), a Docker Engine of the
#     block's own (tests/helpers/engines.sh) in these namespaces, with
#     local/bookworm imported, DOCKER_HOST set and kashim's .deb
#     ($DOCNS_DEB) in the working directory.
#
# The exit status is the script's.
set -u
script=$1
stage=$2

if [ "${DOCNS_INNER:-}" = 1 ]; then
	set -e
	scratch=$DOCNS_SCRATCH
	if [ "$(id -u)" = 0 ] && [ -n "${DOCNS_CGROUP:-}" ]; then
		umount -R /sys/fs/cgroup 2> /dev/null || umount -l /sys/fs/cgroup 2> /dev/null || true
		mount -t cgroup2 none /sys/fs/cgroup
	fi
	ip link set lo up
	for d in etc var; do
		mkdir -p "$scratch/ov/$d.up" "$scratch/ov/$d.work"
		mount -t overlay overlay \
			-o "lowerdir=/$d,upperdir=$scratch/ov/$d.up,workdir=$scratch/ov/$d.work" "/$d"
	done
	mount -t tmpfs tmpfs /usr/local
	cp -a "$stage/usr/local/." /usr/local/ ||
		{ echo "docns: could not copy the installed files from $stage"; exit 99; }
	mkdir -p "$scratch/work"
	cd "${DOC_CWD:-$scratch/work}"
	set +e
	export HOME=$scratch/work
	# A login shell's PATH, as a reader has it (not the test runner's).
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	[ "${DOCNS_DOCKER:-}" = 1 ] || exec bash "$script"
	cp "$DOCNS_DEB" . || { echo "docns: no package $DOCNS_DEB"; exit 99; }
	. "$(dirname "$0")/../lib.sh"
	. "$(dirname "$0")/engines.sh"
	TMPDIR=$scratch engine_docker_up here || { echo "docns: $ENGINE_WHY"; exit 99; }
	unset DOCNS_DOCKER DOCNS_DEB DOCNS_INNER DOCNS_SCRATCH DOCNS_CGROUP
	bash "$script"
	exit # the EXIT trap stops the engine
fi

scratch=$(mktemp -d -t kashim-doc.XXXXXX)
cg=""
cleanup() {
	# A second signal (a stop sends one to the whole process group, and
	# doctest.py another to this script) must not cut the cleanup short.
	trap '' TERM INT HUP
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		# Every process left in the run's cgroups, then the cgroups,
		# deepest first (an attachment goes with its cgroup).
		local d i
		for i in $(seq 50); do
			[ -e "$cg/cgroup.kill" ] && echo 1 > "$cg/cgroup.kill" 2> /dev/null
			find "$cg" -depth -mindepth 1 -type d -exec rmdir {} + 2> /dev/null
			rmdir "$cg" 2> /dev/null && break
			sleep 0.1
		done
		[ -d "$cg" ] && echo "docns: could not remove $cg" >&2
	fi
	rm -rf "$scratch"
}
trap cleanup EXIT

export DOCNS_INNER=1 DOCNS_SCRATCH=$scratch
if [ "$(id -u)" = 0 ]; then
	mnt=$(. "$(dirname "$0")/../lib.sh" && cgroup2_root)
	if [ -n "$mnt" ]; then
		cg=$mnt/kashim-doc-$$
		mkdir "$cg" || exit 99
		export DOCNS_CGROUP=$cg
	fi
	# The wrapper joins the cgroup first, so that the new cgroup
	# namespace is rooted there.
	bash -c '[ -z "$1" ] || echo $$ > "$1/cgroup.procs" || exit 99
		shift; exec "$@"' _ "$cg" \
		unshare -m -n -p -f ${cg:+-C} --propagation private --mount-proc \
		bash "$0" "$script" "$stage"
else
	unshare -r -m -n -p -f --propagation private --mount-proc bash "$0" "$script" "$stage"
fi
