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
HOOK=() # PATH ARGV...: a createRuntime hook for the next containers

# hook_spec CONFIG PATH ARGV...: a createRuntime hook in the bundle's
# config.json, as podman and CRI-O add one from a hooks.d file; the runtime
# gives it the container's state (JSON, with its pid) on standard input.
hook_spec() {
	"$PY" - "$@" <<'PYEOF'
import json, sys
config, path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(config) as f:
    spec = json.load(f)
spec.setdefault("hooks", {})["createRuntime"] = [{"path": path, "args": args}]
with open(config, "w") as f:
    json.dump(spec, f, indent=1)
PYEOF
}

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
	[ "${#HOOK[@]}" = 0 ] || hook_spec "$b/config.json" "${HOOK[@]}" || { fail "cannot add the hook"; return 1; }
	CONTAINERS+=("$id")
	if ! runc --root "$RUNC_ROOT" create --bundle "$b" --pid-file "$b/pid" "$id" \
		> "$TMP/$id.out" 2> "$TMP/$id.err" < /dev/null; then
		[ -n "${CREATE_MAY_FAIL:-}" ] || fail "runc create: $(head -c 400 "$TMP/$id.err")"
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

# The OCI hook (kashim attach --oci-hook, as scripts/oci-hooks/kashim.json
# runs it) attaches to each container as the runtime creates it, from the
# state on its standard input: a static server covered from its first
# connection; the container deleted and made again under the same name and
# cgroup (what a restart is to the runtime), covered again; a refused
# attach stops the container's creation with kashim's line.
hook_container() { # ID PORT WHAT
	container "$1" "$HOLD" serve "$2" || return 1
	local cg
	cg=$(sed -n 's/^0:://p' "/proc/$CPID/cgroup")
	"$KASHIM" status 2>&1 | grep -F "$cg idle=" > "$TMP/status"
	expect_text "$TMP/status" "$3: the hook attached to $cg before the container started" \
		"$cg idle=37s interval=11s count=4 .*connections=0 "
	start "$1" || return 1
	wait_listen "$2" || { fail "the static server does not listen: $(cat "$TMP/$1.err")"; return 1; }
	bg "$HOLD" connect "$2"
	expect_socket "$CPID" "state=ESTABLISHED local=127.0.0.1:$2 " "$WANT" "$3: its first accepted connection"
}
test_oci_hook() {
	need_runc || return
	local port id=kashim-hk-$$-$RANDOM
	port=$(free_port)
	HOOK=("$KASHIM" kashim attach --oci-hook --idle 37 --interval 11 --count 4)
	hook_container "$id" "$port" "created" || return
	if [ -s "$TMP/$id.err" ]; then fail "runc create printed: $(head -c 300 "$TMP/$id.err")"; else ok "the hook said nothing"; fi
	runc --root "$RUNC_ROOT" delete -f "$id" > /dev/null 2>&1
	if "$KASHIM" status 2>&1 | grep -qF "/kashim-runc-$id idle="; then
		fail "deleted, the container's cgroup is still listed"
	else
		ok "deleted: its cgroup and kashim's program are gone"
	fi
	port=$(free_port)
	rm -rf "$TMP/bundle-$id"
	hook_container "$id" "$port" "made again under the same name" || return
	runc --root "$RUNC_ROOT" delete -f "$id" > /dev/null 2>&1
	# A hook that fails stops the container: kashim's fails open, so
	# that one bad setting cannot stop every container of a host.
	HOOK=("$KASHIM" kashim attach --oci-hook --count 500)
	if CREATE_MAY_FAIL=1 container "$id-bad" "$HOLD" serve "$port"; then
		ok "a refused attach: the container is created all the same"
	else
		fail "a refused attach stopped the container: $(head -c 300 "$TMP/$id-bad.err")"
	fi
	if "$KASHIM" status 2>&1 | grep -qF "/kashim-runc-$id-bad idle="; then
		fail "a refused attach: its cgroup is listed as attached"
	else
		ok "a refused attach: nothing attached to its cgroup"
	fi
	runc --root "$RUNC_ROOT" delete -f "$id-bad" > /dev/null 2>&1
	printf '{"ociVersion":"1.0.2","id":"x","status":"creating","pid":1,"bundle":"/"}' |
		"$KASHIM" attach --oci-hook --count 500 > "$TMP/hook.out" 2> "$TMP/hook.err"
	local rc=$?
	if [ "$rc" -eq 0 ]; then ok "the hook exits 0 when nothing is attached"; else fail "the hook, nothing attached: status $rc"; fi
	expect_text "$TMP/hook.err" "the hook says why, then that the container starts without it" \
		"^kashim attach: --oci-hook: the container starts without kashim$"
}

run_tests
