# SPDX-License-Identifier: MIT
# The scene behind tests/t_audit.sh, run by bash inside fresh pid, network
# and mount namespaces (unshare -pfn --mount-proc), so that kashim audit
# there sees these processes only.  Each program runs in its own cgroup
# $CG/NAME.service, which audit shows as its systemd unit:
#
#   covered.service  hold.py server on :7001, covered by kashim
#   own.service      a server on :7002 that sets its own keepalive options
#                    (50 s idle, 5 s interval, 3 probes, no user timeout)
#   none.service     hold.py server on :7003, no options
#   clients.service  one client to each server, no options
#   mi"n\e.service  a client to :7003 running as nobody (it holds its
#                    connection, never reads: it must outlive none.service
#                    in the mid-read exit case)
#
# How the covered program gets kashim is the function named by COVER_WITH,
# called with its cgroup directory before it starts; it sets COVER, the
# words put before the program.  cover_preload (the default) sets
# LD_PRELOAD and the KENV variables.  The cgroup mode comes in as a
# function defined by COVER_WITH_DEF that attaches its program to the
# directory with the same settings and sets COVER=().
#
# Environment: OUT (results), CG (a fresh cgroup directory), K, LIB, PY,
# HELPERS, PEEK, EXITMID, KENV (as "A=1 B=2"), RETRIES2, and PUB: a
# directory nobody can read with copies of kashim and hold.py (what runs as
# nobody never comes from the checkout, which may sit in a private
# directory).  Writes, in OUT: NAME.pid, audit.txt, audit.json, audit.prom,
# and the status files of the checks; then touches OUT/ready and waits (up
# to 300 s) for OUT/done; then the mid-read exit and the CLOSE_WAIT checks,
# and touches OUT/finished.  Every check runs on a scene that is there: it
# waits for each program's sockets as sockpeek reads them, and when they do
# not come (within bounds made for a loaded machine) it writes what is
# missing to OUT/notready and stops.
set -u
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)

notready() {
	echo "$*" > "$OUT/notready"
	exit 1
}

# wait_for SECONDS CMD...: CMD every 0.1 s until it succeeds, or fails.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# count NAME STATE: how many TCP sockets in STATE program NAME holds.
count() { "$PEEK" "$(cat "$OUT/$1.pid")" 2> /dev/null | grep -c " proto=tcp state=$2 "; }
# holds NAME STATE N...: NAME holds N sockets in STATE (pairs may repeat).
holds() {
	local name=$1
	shift
	while [ $# -gt 0 ]; do
		[ "$(count "$name" "$1")" -eq "$2" ] || return 1
		shift 2
	done
}
# what_is: each program's sockets, for the notready line.
what_is() {
	local p
	for p in covered own none clients mine; do
		printf '%s: %s; ' "$p" "$("$PEEK" "$(cat "$OUT/$p.pid")" 2>&1 | grep -o 'state=[A-Z_]*' | sort | uniq -c | tr -s ' \n' ' ')"
	done
}

ip link set lo up
sysctl -qw net.ipv4.tcp_retries2="$RETRIES2"
for f in "$PUB/kashim" "$PUB/hold.py"; do
	"${NOBODY[@]}" test -r "$f" || notready "nobody (uid 65534) cannot read $f"
done

cover_preload() {
	# shellcheck disable=SC2206 # KENV is a list of words
	COVER=(env LD_PRELOAD="$LIB" $KENV)
}
if [ -n "${COVER_WITH_DEF:-}" ]; then eval "$COVER_WITH_DEF"; fi

# Where each program runs: NAME.service, but nobody's client is in a unit
# whose name needs escaping in JSON and Prometheus (a quote, a backslash;
# cgroup names cannot hold a newline).
MINE_UNIT='mi"n\e.service'
unit_dir() { if [ "$1" = mine ]; then echo "$CG/$MINE_UNIT"; else echo "$CG/$1.service"; fi; }

# start NAME CMD...: CMD in cgroup unit_dir NAME, pid in NAME.pid.
start() {
	local name=$1 dir
	dir=$(unit_dir "$1")
	shift
	mkdir -p "$dir"
	bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' - "$dir" "$@" \
		> "$OUT/$name.log" 2>&1 &
	echo $! > "$OUT/$name.pid"
}

own_server='
import socket, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
l.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 50)
l.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
l.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
l.bind(("127.0.0.1", 7002)); l.listen(8)
held = []
while True:
    held.append(l.accept()[0])
'

mkdir -p "$CG/covered.service"
COVER=()
"${COVER_WITH:-cover_preload}" "$CG/covered.service"
start covered "${COVER[@]}" "$PY" "$HELPERS/hold.py" server 127.0.0.1 7001
start own "$PY" -c "$own_server"
start none "$PY" "$HELPERS/hold.py" server 127.0.0.1 7003
listeners() { holds covered LISTEN 1 && holds own LISTEN 1 && holds none LISTEN 1; }
wait_for 60 listeners || notready "the three servers do not all listen after 60 s: $(what_is)"
start clients "$PY" "$HELPERS/hold.py" clients - - 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003
start mine "${NOBODY[@]}" "$PY" "$PUB/hold.py" clients - - 127.0.0.1:7003
# Every connection accepted by its server (not only made: a connection
# waiting in a listen queue is in no server's descriptors yet).
formed() {
	holds covered ESTABLISHED 1 && holds own ESTABLISHED 1 && holds none ESTABLISHED 2 &&
		holds clients ESTABLISHED 3 && holds mine ESTABLISHED 1
}
wait_for 60 formed || notready "the 8 connections are not all held after 60 s: $(what_is)"

status() { "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; echo $? > "$OUT/$name.status"; }
for p in covered own none clients mine; do "$PEEK" "$(cat "$OUT/$p.pid")" > "$OUT/$p.peek" 2>&1; done
"$K" audit > "$OUT/audit.txt" 2> "$OUT/audit.txt.err"; echo $? > "$OUT/audit.txt.status"
"$K" audit --json > "$OUT/audit.json" 2> "$OUT/audit.json.err"; echo $? > "$OUT/audit.json.status"
"$K" audit --prometheus > "$OUT/audit.prom" 2> "$OUT/audit.prom.err"; echo $? > "$OUT/audit.prom.status"
name=max2m_all status "$K" audit --max-bound 2m
name=nobody status "${NOBODY[@]}" "$PUB/kashim" audit --json
touch "$OUT/ready"
wait_for 300 test -e "$OUT/done" || notready "the test did not say done within 300 s"
# A process that exits while audit reads it: none.service, after its
# first socket.
name=exitmid status env LD_PRELOAD="$EXITMID" EXITMID_PID="$(cat "$OUT/none.pid")" EXITMID_AFTER=1 "$K" audit --json
# Without the clients and nobody's client, the servers' connections wait in
# CLOSE_WAIT: covered 81 s, own 65 s idle, about 26 s busy.
kill -KILL "$(cat "$OUT/clients.pid")" "$(cat "$OUT/mine.pid")"
left() { [ -z "$(ss -Htn state established)" ] && holds covered CLOSE_WAIT 1 && holds own CLOSE_WAIT 1; }
wait_for 60 left || notready "the servers' connections are not all in CLOSE_WAIT 60 s after the clients were killed: $(what_is)"
name=max2m_left status "$K" audit --max-bound 2m
name=max70s_left status "$K" audit --max-bound 70s
name=max_bad status "$K" audit --max-bound 5x
touch "$OUT/finished"
