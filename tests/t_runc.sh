#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kashim in a real container runtime (runc): a bundle whose root is an empty
# directory with read-only bind mounts of this host's /usr and /etc (no
# image, no registry), kashim installed by make install into a scratch
# prefix bound as the container's /usr/local (the host's /usr/local is not
# touched).  The container shares the host's network namespace, so a
# client here reaches it on loopback; its sockets are read from outside
# with sockpeek.  Every container, its state and its cgroup are removed
# when the test ends, pass or fail.
. "$(dirname "$0")/lib.sh"

KASHIM=$ROOT/kashim
HOLD=$ROOT/tests/tcphold
RUNC_ROOT=""
CONTAINERS=()

runc_cleanup() {
	local id
	for id in "${CONTAINERS[@]}"; do
		runc --root "$RUNC_ROOT" kill "$id" KILL > /dev/null 2>&1
		runc --root "$RUNC_ROOT" delete -f "$id" > /dev/null 2>&1
	done
	cleanup
}

# need_runc: root, runc and a cgroup2 mount; makes the scratch install
# ($TMP/prefix) and the rootfs ($TMP/rootfs).
need_runc() {
	need_root || return 1
	need_cmd runc || return 1
	RUNC_ROOT=$TMP/runc-state
	trap runc_cleanup EXIT
	if ! make -s -C "$ROOT" install DESTDIR="$TMP/prefix" PREFIX=/usr/local > "$TMP/install.log" 2>&1; then
		fail "make install DESTDIR=$TMP/prefix: $(tail -n 5 "$TMP/install.log")"
		return 1
	fi
	mkdir -p "$TMP/rootfs"/{usr,etc,proc,dev,sys,tmp} "$TMP/rootfs/$ROOT"
	local l
	for l in bin lib lib64 sbin; do
		if [ -L "/$l" ]; then
			ln -s "$(readlink "/$l")" "$TMP/rootfs/$l"
		else
			mkdir -p "$TMP/rootfs/$l" && BINDS+=",/$l:/$l"
		fi
	done
}

BINDS=""
# container ID ARGS...: a bundle for ARGS (KASHIM_* of the environment
# passed in) and `runc create` of it: created, not started; its pid in
# $CPID.
container() {
	local id=$1 b=$TMP/bundle-$1
	shift
	mkdir -p "$b"
	(cd "$b" && runc spec) || { fail "runc spec failed"; return 1; }
	"$PY" "$HELPERS/runcspec.py" "$b/config.json" "$TMP/rootfs" "/kashim-runc-$id" \
		"$TMP/prefix/usr/local:/usr/local,$ROOT:$ROOT$BINDS" "$@" || { fail "runcspec.py failed"; return 1; }
	CONTAINERS+=("$id")
	if ! runc --root "$RUNC_ROOT" create --bundle "$b" --pid-file "$b/pid" "$id" \
		> "$TMP/$id.out" 2> "$TMP/$id.err" < /dev/null; then
		fail "runc create: $(head -c 400 "$TMP/$id.err")"
		return 1
	fi
	CPID=$(cat "$b/pid")
}

start() { runc --root "$RUNC_ROOT" start "$1" 2> "$TMP/$1.start" || { fail "runc start: $(cat "$TMP/$1.start")"; return 1; }; }

# The entrypoint finds the installed library (the scratch prefix's
# /usr/local/lib, make install's LIBDIR) with no variable naming it.
test_entrypoint() {
	need_runc || return
	local port id=kashim-ep-$$-$RANDOM
	port=$(free_port)
	KASHIM_IDLE=37 KASHIM_INTERVAL=11 KASHIM_COUNT=4 container "$id" \
		/usr/local/bin/kashim-entrypoint "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port" || return
	start "$id" || return
	wait_listen "$port" || { fail "the container's server does not listen: $(cat "$TMP/$id.err")"; return; }
	bg "$HOLD" connect "$port"
	expect_socket "$CPID" "state=ESTABLISHED local=127.0.0.1:$port " "$WANT" \
		"kashim-entrypoint in runc, no KASHIM_LIB: python3's accepted connection"
	if tr '\0' '\n' < "/proc/$CPID/environ" | grep -qx "LD_PRELOAD=/usr/local/lib/libkashim.so"; then
		ok "the entrypoint set LD_PRELOAD=/usr/local/lib/libkashim.so and exec'd the program (same pid)"
	else
		fail "the container's process has: $(tr '\0' ' ' < "/proc/$CPID/environ")"
	fi
}

# kashim attach from the host on a container's cgroup (between runc create
# and runc start) covers a static server inside it from its first
# connection; named by its path below the cgroup2 mount (the 0:: line of
# /proc/PID/cgroup), as on any host.
test_attach_from_host() {
	need_runc || return
	local port id=kashim-at-$$-$RANDOM cg
	port=$(free_port)
	container "$id" "$HOLD" serve "$port" || return
	cg=$(sed -n 's/^0:://p' "/proc/$CPID/cgroup")
	if [ -z "$cg" ] || [ "$cg" = / ]; then
		fail "the container has no cgroup of its own: '$cg'"
		return
	fi
	if ! "$KASHIM" attach --idle 37 --interval 11 --count 4 "${cg#/}" 2> "$TMP/attach.err"; then
		fail "kashim attach ${cg#/}: $(cat "$TMP/attach.err")"
		return
	fi
	ok "kashim attach ${cg#/} (the container's cgroup, below the cgroup2 mount)"
	start "$id" || return
	wait_listen "$port" || { fail "the static server does not listen: $(cat "$TMP/$id.err")"; return; }
	bg "$HOLD" connect "$port"
	expect_socket "$CPID" "state=ESTABLISHED local=127.0.0.1:$port " "$WANT" \
		"a static server in runc, covered by kashim attach from the host"
	"$KASHIM" status 2>&1 | grep -F "$cg idle=" > "$TMP/status"
	expect_text "$TMP/status" "kashim status lists the container's cgroup" "$cg idle=37s interval=11s count=4 .*connections=1 "
}

run_tests
