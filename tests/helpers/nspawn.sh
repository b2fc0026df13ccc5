# SPDX-License-Identifier: MIT
# Booting this machine's own root with a real systemd as PID 1
# (systemd-nspawn), for tests/t_systemd.sh.  Source it after lib.sh.
#
#   nspawn_prepare             $SD: a scratch tree (units/, res/, prefix/)
#   nspawn_boot NAME LAYOUT FILTER LIMIT
#       boots with $SD/units as /etc/systemd/system and target kt.target;
#       LAYOUT hybrid (the host's layout mirrored; SYSTEMD_NSPAWN_UNIFIED_
#       HIERARCHY=0 would give a cgroup v1 only one) or unified, FILTER bpf (bpf(2) let through nspawn's
#       seccomp filter) or none; the boot is killed after LIMIT seconds.
#       The container sees $ROOT read-only at its own path, $SD/res at
#       /kt-res, the scratch install ($SD/prefix/usr/local, make install
#       DESTDIR=) at /usr/local, and $SD/kashim.conf (writable) at
#       /etc/kashim.conf.
#       Sets BOOT_MS (the boot, the test inside and the poweroff).
#
# Here PID 1 is not systemd: nspawn makes its payload/ and supervisor/
# cgroups below the one it starts in, and a container whose nspawn was
# killed keeps running there.  So each boot runs in a cgroup of its own,
# which is killed (cgroup.kill) and removed after the boot, pass or fail.

NSPAWN_CGROUPS=()
# More systemd-nspawn arguments for every boot (tests/helpers/docsystemd.sh
# binds the documentation block's directory with it).
NSPAWN_EXTRA=()

# The cgroup v1 mount points (on a hybrid host, name=systemd among them).
nspawn_cgroup1_mounts() {
	awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup") print $5; break } }' \
		/proc/self/mountinfo
}

# nspawn_end_cgroup DIR: every process in DIR and below killed, the
# cgroups removed, depth first, with those nspawn made under the same name
# in the cgroup v1 hierarchies of a hybrid host (name=systemd); waits up
# to 10 s for them to go.
nspawn_end_cgroup() {
	local dir=$1 rel i m left
	rel=${dir#"$(cgroup2_root)"}
	[ -e "$dir/cgroup.kill" ] && echo 1 > "$dir/cgroup.kill" 2> /dev/null
	for i in $(seq 100); do
		left=0
		for m in "$dir" $(nspawn_cgroup1_mounts | sed "s|\$|$rel|"); do
			[ -d "$m" ] || continue
			find "$m" -depth -type d -exec rmdir {} + 2> /dev/null
			[ -d "$m" ] && left=1
		done
		[ "$left" = 0 ] && return 0
		sleep 0.1
	done
	echo "# cgroup $rel could not be removed everywhere" >&2
	return 1
}

nspawn_cleanup() {
	local c
	trap '' TERM INT HUP # a second signal must not cut the cleanup short
	for c in "${NSPAWN_CGROUPS[@]}"; do nspawn_end_cgroup "$c"; done
	cleanup
}

# nspawn_usable: root, systemd-nspawn, a cgroup2 mount with cgroup.kill;
# else skips with the reason.
nspawn_usable() {
	need_root || return 1
	need_cmd systemd-nspawn systemd-escape || return 1
	local root
	root=$(cgroup2_root)
	if [ -z "$root" ]; then
		skip "no cgroup2 mount in /proc/self/mountinfo"
		return 1
	fi
	if [ ! -x /lib/systemd/systemd ]; then
		skip "no /lib/systemd/systemd to boot"
		return 1
	fi
}

nspawn_prepare() {
	SD=$TMP/sd
	mkdir -p "$SD/units" "$SD/res" "$SD/prefix"
	: > "$SD/kashim.conf"
	trap nspawn_cleanup EXIT
	# The boot stops at a prompt otherwise.
	ln -sfn /dev/null "$SD/units/systemd-firstboot.service"
	# kashim installed as an operator would, into a scratch prefix that the
	# container sees as /usr/local (the host's /usr/local is not touched).
	if ! make -s -C "$ROOT" install DESTDIR="$SD/prefix" PREFIX=/usr/local > "$SD/install.log" 2>&1; then
		fail "make install DESTDIR=$SD/prefix: $(tail -n 5 "$SD/install.log")"
		return 1
	fi
}

# nspawn_plan: the oneshot kt-driver.service that runs $SD/res/plan.sh
# (bash, with lib.sh's and tests/helpers/insystemd.sh's helpers; write it
# before the boot), its output in $SD/res/tap, then the poweroff;
# kt.target pulls it in.
nspawn_plan() {
	cat > "$SD/units/kt.target" <<-UNIT
	[Unit]
	Description=kashim test target
	Requires=kt-driver.service
	After=kt-driver.service
	UNIT
	cat > "$SD/units/kt-driver.service" <<-UNIT
	[Unit]
	Description=kashim test driver
	[Service]
	Type=oneshot
	Environment=TESTS_ROOT=$ROOT
	ExecStart=/bin/bash $ROOT/tests/helpers/insystemd.sh /kt-res/plan.sh
	StandardOutput=append:/kt-res/tap
	StandardError=inherit
	# (systemctl asks logind first, absent here: a line on stderr, then the poweroff)
	ExecStopPost=/bin/sh -c 'exec systemctl --no-block poweroff 2> /dev/null'
	TimeoutStartSec=150
	UNIT
}

nspawn_boot() {
	local name=$1 layout=$2 filter=$3 limit=$4 root cg start rc
	local args=(-q -D / --volatile=yes --register=no --keep-unit --capability=all
		--private-network --bind="$SD/units:/etc/systemd/system" --bind="$SD/res:/kt-res"
		--bind-ro="$ROOT" --bind-ro="$SD/prefix/usr/local:/usr/local"
		--bind="$SD/kashim.conf:/etc/kashim.conf" "${NSPAWN_EXTRA[@]}")
	local envs=(BOOT_NAME="$name")
	# pidfd_getfd: for sockpeek, which reads the services' sockets from outside.
	args+=(--system-call-filter="pidfd_open pidfd_getfd")
	[ "$filter" = bpf ] && args+=(--system-call-filter=bpf)
	[ "$layout" = unified ] && envs+=(SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1)
	root=$(cgroup2_root)
	cg=$root/kashim-nspawn-$$-$RANDOM
	mkdir "$cg" || { fail "$name: cannot create the boot's cgroup $cg"; return 1; }
	NSPAWN_CGROUPS+=("$cg")
	if [ ! -e "$cg/cgroup.kill" ]; then
		skip "$name: no cgroup.kill (Linux 5.14) to end a container on a timeout"
		return 1
	fi
	rm -f "$SD/res/tap"
	start=$(date +%s%N)
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' nspawn "$cg" \
		env -u SYSTEMD_NSPAWN_UNIFIED_HIERARCHY "${envs[@]}" timeout -k 5 "$limit" systemd-nspawn "${args[@]}" \
		-b systemd.unit=kt.target systemd.firstboot=off > "$SD/res/nspawn.log" 2>&1
	rc=$?
	BOOT_MS=$((($(date +%s%N) - start) / 1000000))
	nspawn_end_cgroup "$cg" || fail "$name: the boot's cgroup $cg is left behind"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail "$name: the boot did not power off within $limit s: $(tail -n 5 "$SD/res/nspawn.log" | tr '\n' ';')"
	fi
	if [ ! -s "$SD/res/tap" ]; then
		fail "$name: the test inside never ran (nspawn status $rc): $(tail -n 8 "$SD/res/nspawn.log" | tr '\n' ';')"
		return 1
	fi
	cat "$SD/res/tap"
	grep -q '^# driver done$' "$SD/res/tap" || fail "$name: the test inside did not finish"
	echo "# $name: boot, test and poweroff in $BOOT_MS ms ($layout layout, filter $filter)"
	return 0
}
