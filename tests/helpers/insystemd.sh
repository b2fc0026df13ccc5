#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs inside a container booted by tests/helpers/nspawn.sh, as the oneshot
# kt-driver.service (so outside every service it checks): sources lib.sh
# and the plan the host wrote (insystemd.sh PLAN), which calls the helpers
# below.  Every check reads the service's sockets from outside it, with
# tests/sockpeek on its main pid.
. "$TESTS_ROOT/tests/lib.sh"
HOLD=$ROOT/tests/tcphold
KASHIM=$ROOT/kashim
UNTOUCHED="keepalive=0 idle=7200 interval=75 count=9 user_timeout=0"
T="t_systemd: inside" # the plan names it
TMP=$(mktemp -d)
trap 'cleanup; echo "# driver done"' EXIT

# bg CMD...: lib.sh's, with the output dropped (no file to race for).
bg() {
	"$@" > /dev/null 2>&1 &
	BG=$!
	BG_PIDS+=("$BG")
}

# main_pid UNIT: its main pid, waited for up to 10 s (a socket-activated
# service starts on its first connection); empty if it never comes.
main_pid() {
	local i pid
	for i in $(seq 100); do
		pid=$(systemctl show -P MainPID "$1")
		[ -n "$pid" ] && [ "$pid" != 0 ] && { echo "$pid"; return 0; }
		sleep 0.1
	done
	return 1
}

# unit_says UNIT: the last lines of its journal, one line.
unit_says() { journalctl -q -b -o cat -u "$1" 2> /dev/null | tail -n 4 | tr '\n' ';'; }

# serve_check UNIT PORT WANT WHAT: UNIT (started unless running) listens on
# 127.0.0.1:PORT; a static client connects from here; the connection in
# the service's main process (NAME.service for NAME.socket), read from
# outside it with sockpeek, has WANT.
serve_check() {
	local unit=$1 port=$2 want=$3 what=$4 pid service=${1%.socket}
	[ "$service" = "$1" ] || service=$service.service
	if ! systemctl start "$unit" 2> "$TMP/start.err"; then
		fail "$what: systemctl start $unit: $(cat "$TMP/start.err") $(unit_says "$unit")"
		return 1
	fi
	wait_listen "$port" || { fail "$what: nothing listens on $port: $(unit_says "$unit")"; return 1; }
	bg "$HOLD" connect "$port"
	if ! pid=$(main_pid "$service"); then
		fail "$what: $service has no main process: $(unit_says "$service")"
		return 1
	fi
	expect_socket "$pid" "state=ESTABLISHED local=127.0.0.1:$port " "$want" "$what"
}

# restart_check UNIT PORT WANT WHAT: serve_check after systemctl restart
# (systemd makes the service's cgroup anew).
restart_check() {
	local before after
	before=$(cgroup_inode "$1")
	systemctl restart "$1" || { fail "$4: systemctl restart $1: $(unit_says "$1")"; return 1; }
	after=$(cgroup_inode "$1")
	if [ -n "$before" ] && [ "$before" != "$after" ]; then
		ok "$4: a new cgroup (inode $before, then $after)"
	else
		fail "$4: the cgroup is not new (inode $before, then $after)"
	fi
	serve_check "$@"
}

# (No awk here: /usr/bin/awk is an alternatives link into the host's /etc.)
CGROOT=$(sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \([^ ]*\) .* - cgroup2 .*/\1/p' /proc/self/mountinfo | head -n 1)
[ "$CGROOT" = / ] && CGROOT=""

# cgroup_inode UNIT: the inode of its cgroup directory (a new cgroup has a
# new one).
cgroup_inode() { stat -c %i "$CGROOT$(systemctl show -P ControlGroup "$1")" 2> /dev/null; }

# journal_check UNIT PATTERN WHAT: UNIT's journal of this boot has exactly
# one line from kashim, and it matches the extended regex PATTERN.
journal_check() {
	local lines
	lines=$(journalctl -q -b -o cat -u "$1" 2> /dev/null | grep '^kashim')
	if [ "$(printf '%s\n' "$lines" | grep -c .)" = 1 ] && printf '%s\n' "$lines" | grep -qE -- "$2"; then
		ok "$3: $lines"
	else
		fail "$3: kashim's lines in the journal of $1: ${lines:-none} (all: $(unit_says "$1"))"
	fi
}

. "$1"
