#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kashim under a real systemd: this machine's own root booted with
# systemd-nspawn (systemd as PID 1, /usr read-only, the rest a tmpfs), the
# test's units bound over /etc/systemd/system, kashim installed by make
# install into a scratch prefix the container sees as /usr/local.  A
# oneshot unit inside (tests/helpers/insystemd.sh) starts the services,
# connects to them and reads their sockets from outside them (sockpeek);
# its lines are printed here.  Each boot is bounded in time and runs in a
# cgroup of its own, killed and removed after it.
. "$(dirname "$0")/lib.sh"
. "$HELPERS/nspawn.sh"

KASHIM=$ROOT/kashim
HOLD=$ROOT/tests/tcphold
KARGS=(--idle 37 --interval 11 --count 4)
BOOT_LIMIT=90

# unit NAME: a unit file in $SD/units from stdin.
unit() { cat > "$SD/units/$1"; }

# dropin UNIT FILE: FILE as UNIT's drop-in kashim.conf.
dropin() { mkdir -p "$SD/units/$1.d" && cp "$2" "$SD/units/$1.d/kashim.conf"; }

# plan: the test run inside, from stdin (see insystemd.sh).
plan() { nspawn_plan && { echo "T='$T'" && cat; } > "$SD/res/plan.sh"; }
plan_more() { cat >> "$SD/res/plan.sh"; }

# The drop-ins, generated once here on the host, as an operator does
# before shipping them to a fleet.
make_dropins() {
	"$KASHIM" dropin "${KARGS[@]}" --library "$LIB" > "$SD/dropin-preload.conf" 2> "$TMP/err" &&
		"$KASHIM" dropin --cgroup "${KARGS[@]}" > "$SD/dropin-cgroup.conf" 2>> "$TMP/err" &&
		"$KASHIM" dropin --cgroup --strict "${KARGS[@]}" > "$SD/dropin-strict.conf" 2>> "$TMP/err" &&
		return 0
	fail "kashim dropin: $(cat "$TMP/err")"
	return 1
}

# static_unit NAME PORT: tcphold serving on PORT (a static program: only
# the cgroup mode reaches it).
static_unit() {
	unit "$1" <<-UNIT
	[Service]
	ExecStart=$HOLD serve $2
	UNIT
}

# socket_pair NAME PORT [SOCKET-LINES]: NAME.socket listening on
# 127.0.0.1:PORT and NAME.service accepting on the descriptor it passes
# (python3, not preloaded unless a drop-in says so).
socket_pair() {
	unit "$1.socket" <<-UNIT
	[Socket]
	ListenStream=127.0.0.1:$2
	${3:-}
	UNIT
	unit "$1.service" <<-UNIT
	[Service]
	ExecStart=$PY $HELPERS/fdserve.py
	UNIT
}

# The library by Environment= lines (by path and by name), the drop-in of
# kashim dropin, and the drop-in of kashim dropin --cgroup on a static
# program, with a restart; then a socket-activated service.  LAYOUT:
# hybrid (this machine's) or unified (most hosts today: cgroup2 at
# /sys/fs/cgroup, where a drop-in naming /sys/fs/cgroup/unified fails).
services_boot() {
	local layout=$1
	nspawn_usable || return
	nspawn_prepare || return
	make_dropins || return
	unit kt-envpath.service <<-UNIT
	[Service]
	Environment=LD_PRELOAD=$LIB
	Environment=KASHIM_IDLE=37 KASHIM_INTERVAL=11 KASHIM_COUNT=4
	ExecStart=$PY $HELPERS/hold.py server 127.0.0.1 7101
	UNIT
	unit kt-envname.service <<-UNIT
	[Service]
	Environment=LD_PRELOAD=libkashim.so
	Environment=KASHIM_IDLE=37 KASHIM_INTERVAL=11 KASHIM_COUNT=4
	ExecStart=$PY $HELPERS/hold.py server 127.0.0.1 7102
	UNIT
	unit kt-dropin.service <<-UNIT
	[Service]
	ExecStart=$PY $HELPERS/hold.py server 127.0.0.1 7103
	UNIT
	dropin kt-dropin.service "$SD/dropin-preload.conf"
	static_unit kt-static.service 7104
	dropin kt-static.service "$SD/dropin-cgroup.conf"
	socket_pair kt-sock 7105
	dropin kt-sock.service "$SD/dropin-preload.conf"
	plan <<-PLAN
	want_mount=$([ "$layout" = unified ] && echo /sys/fs/cgroup || nspawn_cgroup2_root)
	PLAN
	plan_more <<-'PLAN'
	if [ "$CGROOT" = "$want_mount" ]; then ok "the cgroup2 mount is $CGROOT"; else fail "cgroup2 at '$CGROOT', want $want_mount"; fi
	serve_check kt-envpath.service 7101 "$WANT" "Environment=LD_PRELOAD=/path/libkashim.so"
	# By name: found by the loader in /usr/local/lib (make install's
	# directory, listed in ld.so.conf as Debian's libc.conf does; this
	# container's /etc is a fresh tmpfs).
	echo /usr/local/lib > /etc/ld.so.conf && ldconfig
	serve_check kt-envname.service 7102 "$WANT" "Environment=LD_PRELOAD=libkashim.so (by name)"
	serve_check kt-dropin.service 7103 "$WANT" "the drop-in of kashim dropin"
	serve_check kt-static.service 7104 "$WANT" "the drop-in of kashim dropin --cgroup, made on the host, on a static program"
	restart_check kt-static.service 7104 "$WANT" "systemctl restart: covered again"
	serve_check kt-sock.socket 7105 "$WANT" "socket-activated (ListenStream=, accept on the passed fd), kashim dropin"
	PLAN
	nspawn_boot "$layout" "$layout" bpf "$BOOT_LIMIT"
}

test_services_hybrid() { services_boot hybrid; }
test_services_unified() { services_boot unified; }

# A refused attach (bpf(2) stopped by nspawn's seccomp filter, as by a
# sandbox): the service starts anyway, uncovered, and its journal has
# kashim's one line saying why; with --strict it does not start.
test_refused_attach() {
	nspawn_usable || return
	nspawn_prepare || return
	make_dropins || return
	static_unit kt-static.service 7104
	dropin kt-static.service "$SD/dropin-cgroup.conf"
	static_unit kt-strict.service 7111
	dropin kt-strict.service "$SD/dropin-strict.conf"
	plan <<-'PLAN'
	serve_check kt-static.service 7104 "$UNTOUCHED" "refused attach: the service starts anyway, uncovered"
	journal_check kt-static.service "^kashim attach: bpf\(2\) was refused .*seccomp filter.*nothing attached$" \
		"refused attach: one journal line, naming the seccomp filter"
	if systemctl start kt-strict.service 2> /dev/null; then
		fail "--strict: the service started though the attach was refused"
	else
		ok "--strict: the service does not start ($(systemctl show -P Result kt-strict.service))"
	fi
	PLAN
	nspawn_boot refused hybrid none "$BOOT_LIMIT"
}

[ -n "${T_ONLY:-}" ] || run_tests
