#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run: timeout 1500 (the first run on a machine builds the images' root and the engine host's root with debootstrap, 3-6 min each)
# The cgroup mode for containers, with the real engines (issue 28 section 3):
# a container found by name (kashim attach --container), how long an
# attachment to its own cgroup lasts (until a restart: said at attach time,
# refused by --lasting), and what lasts: the engine's parent cgroup (every
# container started there, restarts and a compose-like recreate included)
# and, for podman, kashim's OCI hook (scripts/oci-hooks/kashim.json).  On
# this machine's hybrid layout (a private dockerd and a rootful podman with
# the cgroupfs driver, tests/helpers/engines.sh) and on a unified one (a
# systemd host in nspawn running both with the systemd driver,
# tests/helpers/enginehost.sh).  A static server (tests/tcphold, bound
# from the checkout) is each container's main process; the client is a
# `docker exec` in the same container; the server's accepted connection is
# read from outside with sockpeek.
. "$(dirname "$0")/lib.sh"
. "$HELPERS/engines.sh"
. "$HELPERS/nspawn.sh" # nspawn_end_cgroup
. "$HELPERS/enginehost.sh"

KASHIM=$ROOT/kashim
HOLD=$ROOT/tests/tcphold
KARGS=(--idle 37 --interval 11 --count 4)
UNTOUCHED="keepalive=0 idle=7200 interval=75 count=9 user_timeout=0"
PORT=7301 # inside each container's own network namespace

# The engines' default parents (docker/, libpod_parent/) are the
# machine's, shared with any other test that runs an engine at the same
# time: each container here goes below $TOP, this test's own cgroup, in a
# parent named as the engine's (--cgroup-parent).  $TOP is removed at the
# end, with its copies in the cgroup v1 hierarchies.
TOP=""
top_cleanup() {
	engines_cleanup
	[ -n "$TOP" ] && nspawn_end_cgroup "$TOP"
	cleanup
}
need_top() {
	TOP=$(cgroup2_root)/kashim-ct-$$-$RANDOM
	mkdir "$TOP" || { fail "cannot make $TOP"; return 1; }
	trap top_cleanup EXIT
}

# in_engine ENGINE CMD...: CMD in the engine's namespaces (kashim runs
# where the engine runs: its pids are the engine's); podman's command is
# the harness's wrapper, found first in PATH.
in_engine() {
	local engine=$1 ns
	shift
	if [ "$engine" = docker ]; then
		ns=$(engine_ns_init "$ENGINE_DOCKER_NS")
	else
		ns=$(engine_ns_init "$ENGINE_PODMAN_NS")
	fi
	CONTAINERS_CONF=$ENGINE_PODMAN_DIR/containers.conf CONTAINERS_STORAGE_CONF=$ENGINE_PODMAN_DIR/storage.conf \
		nsenter -t "$ns" -m -p -n --wd="$PWD" -- "$@"
}

parent_of() { [ "$1" = docker ] && echo docker || echo libpod_parent; }

# run_server ENGINE NAME [ARGS...]: a detached container NAME whose main
# process is a static server on $PORT.
run_server() {
	local engine=$1 name=$2
	shift 2
	"${engine}_" run -d --name "$name" --network none -v "$ROOT:$ROOT:ro" \
		--cgroup-parent "${TOP#"$(cgroup2_root)"}/$(parent_of "$engine")" "$@" local/bookworm \
		"$HOLD" serve "$PORT" > "$TMP/run.out" 2>&1 ||
		{ fail "$engine run $name: $(tail -n 2 "$TMP/run.out")"; return 1; }
}

# served ENGINE NAME WANT WHAT: a client in the container (exec) connects;
# the server's accepted connection, read from outside, has WANT.
served() {
	local engine=$1 name=$2 flag="" pid
	[ "$engine" = podman ] && flag=--podman
	pid=$(container_pid $flag "$name") || { fail "$4: $name has no process"; return 1; }
	"${engine}_" exec -d "$name" "$HOLD" connect "$PORT" > "$TMP/exec.out" 2>&1 ||
		{ fail "$4: $engine exec: $(cat "$TMP/exec.out")"; return 1; }
	expect_socket "$pid" "state=ESTABLISHED local=127.0.0.1:$PORT " "$3" "$4"
}

# listed PATH: kashim status lists PATH.
listed() { "$KASHIM" status 2> /dev/null | grep -qF "$1 idle="; }

# A container by name from the host: the note says how long it lasts and
# what to attach instead; covered; after a restart (a new cgroup) no
# longer covered, and no longer listed; --lasting refuses it.
container_by_name() { # ENGINE
	local engine=$1 name=kt-web-$$ cg id parent
	parent=$TOP/$(parent_of "$engine")
	run_server "$engine" "$name" || return
	id=$("${engine}_" inspect -f '{{.Id}}' "$name")
	cg=$parent/$([ "$engine" = podman ] && echo "libpod-")$id
	in_engine "$engine" "$KASHIM" attach "${KARGS[@]}" --container "$name" > "$TMP/out" 2> "$TMP/err"
	if [ $? = 0 ] && listed "$cg"; then
		ok "kashim attach --container $name --engine auto: $cg attached"
	else
		fail "attach --container $name: $(cat "$TMP/err")"
		return
	fi
	expect_text "$TMP/err" "it says how long that lasts and what lasts instead" \
		"^kashim attach: $(re_quote "$cg") is the cgroup of $engine container ${id:0:12}: covered until it stops or restarts .* attach to $engine's parent cgroup $(re_quote "$parent") \(every container started there, restarts included\)"
	served "$engine" "$name" "$WANT" "$engine container by name: covered"
	"${engine}_" restart -t 1 "$name" > /dev/null 2>&1 || { fail "$engine restart $name failed"; return; }
	if listed "$cg"; then fail "after the restart, still listed"; else ok "after $engine restart: $cg is no longer listed"; fi
	served "$engine" "$name" "$UNTOUCHED" "after $engine restart: the container's new connection is left alone (what the note said)"
	in_engine "$engine" "$KASHIM" attach --lasting "${KARGS[@]}" --container "$name" > "$TMP/out" 2> "$TMP/err"
	if [ $? = 2 ] && ! listed "$cg" && grep -q "^kashim attach: --lasting: .*; nothing attached$" "$TMP/err"; then
		ok "attach --lasting --container $name: refused, status 2, nothing attached"
	else
		fail "attach --lasting --container: $(cat "$TMP/err")"
	fi
	"${engine}_" stop -t 1 "$name" > /dev/null 2>&1
	in_engine "$engine" "$KASHIM" attach --container "$name" --engine "$engine" > "$TMP/out" 2> "$TMP/err"
	expect_text "$TMP/err" "a stopped container: kashim says so" \
		"^kashim attach: --container $name: $engine: the container ${id:0:12} is not running \(it has no process\); nothing attached$"
	"${engine}_" rm -f "$name" > /dev/null 2>&1
	in_engine "$engine" "$KASHIM" attach --container "$name" --engine "$engine" > "$TMP/out" 2> "$TMP/err"
	expect_text "$TMP/err" "a container that is not there: the engine's own words" \
		"^kashim attach: --container $name: $engine container inspect: .*$name.*; nothing attached$"
}

# The engine's parent cgroup covers every container started below it from
# now on: a new one, one restarted, one recreated under its name (rm and
# run again, as compose does).
parent_lasts() { # ENGINE
	local engine=$1 name=kt-app-$$ parent
	parent=$TOP/$(parent_of "$engine")
	mkdir -p "$parent" # the engine makes it at its first container; it stays
	expect_status 0 "attach --lasting to $engine's parent cgroup $parent" "$KASHIM" attach --lasting "${KARGS[@]}" "$parent"
	run_server "$engine" "$name" || return
	served "$engine" "$name" "$WANT" "$engine: a container started after the attach"
	"${engine}_" restart -t 1 "$name" > /dev/null 2>&1 || { fail "$engine restart failed"; return; }
	served "$engine" "$name" "$WANT" "$engine restart: covered again"
	"${engine}_" rm -f "$name" > /dev/null 2>&1
	run_server "$engine" "$name" || return
	served "$engine" "$name" "$WANT" "$engine rm and run again under the same name (a compose recreate): covered"
	"${engine}_" rm -f "$name" > /dev/null 2>&1
	"$KASHIM" detach "$parent" > /dev/null 2>&1
}

test_docker_hybrid() {
	need_root || return
	engine_docker_up || { fail "$ENGINE_WHY"; return; }
	need_top || return # (after the engine: its EXIT trap is called from ours)
	container_by_name docker
	parent_lasts docker
}

# kashim's OCI hook (scripts/oci-hooks/kashim.json, its kashim and its
# configuration file this checkout's) in podman's hooks directory: each
# container is covered from its first connection, after a restart and
# when made again under its name, with nothing attached to the parent.
oci_hook() {
	local name=kt-hooked-$$ hooks=$TMP/hooks.d
	mkdir -p "$hooks"
	printf 'idle = 37s\ninterval = 11s\ncount = 4\n' > "$TMP/kashim.conf"
	sed -e "s|/usr/local/bin/kashim|$KASHIM|" -e "s|/etc/kashim.conf|$TMP/kashim.conf|" \
		"$ROOT/scripts/oci-hooks/kashim.json" > "$hooks/kashim.json"
	run_server podman "$name" --hooks-dir "$hooks" || return
	served podman "$name" "$WANT" "podman with kashim's OCI hook: covered from the first connection"
	podman_ --hooks-dir "$hooks" restart -t 1 "$name" > /dev/null 2>&1 || { fail "podman restart failed"; return; }
	served podman "$name" "$WANT" "podman restart: the hook attached to the new cgroup"
	podman_ rm -f "$name" > /dev/null 2>&1
	run_server podman "$name" --hooks-dir "$hooks" || return
	served podman "$name" "$WANT" "podman rm and run again: covered"
	if listed "$TOP/libpod_parent"; then fail "the parent is attached"; else ok "nothing on the parent: the hook did it"; fi
	podman_ rm -f "$name" > /dev/null 2>&1
}

test_podman_hybrid() {
	need_root || return
	engine_podman_up || { fail "$ENGINE_WHY"; return; }
	need_top || return
	container_by_name podman
	parent_lasts podman
	oci_hook
}

# ---- the unified layout: a systemd host running both engines -------------

# On the engine host: docker and podman with the systemd driver
# (system.slice/docker-ID.scope, machine.slice/libpod-ID.scope), kashim
# run inside it as the host's own service would be.
H=kt-cg$$
hk() { ehost_in "$H" /usr/local/bin/kashim "$@"; }
hrun() { # ENGINE NAME [ARGS...]: a detached static server on $PORT
	local engine=$1 name=$2
	shift 2
	ehost_in "$H" "$engine" run -d --name "$name" --network none -v "$ROOT:$ROOT:ro" "$@" local/bookworm \
		"$HOLD" serve "$PORT" > "$TMP/run.out" 2>&1 ||
		{ fail "$engine run $name in the engine host: $(tail -n 2 "$TMP/run.out")"; return 1; }
}
# hserver_pid CGROUP-BELOW: the server's pid, as this machine numbers it,
# from the container's cgroup on the host's tree.
hserver_pid() {
	local p
	for p in $(cat "$(ehost_cgroup "$H")/$1/cgroup.procs" 2> /dev/null); do
		tr '\0' ' ' < "/proc/$p/cmdline" 2> /dev/null | grep -q " serve $PORT" && { echo "$p"; return 0; }
	done
	return 1
}
hcg() { # ENGINE NAME: the container's cgroup below the host's mount
	local id
	id=$(ehost_in "$H" "$1" inspect -f '{{.Id}}' "$2")
	[ "$1" = docker ] && echo "system.slice/docker-$id.scope" || echo "machine.slice/libpod-$id.scope"
}
hserved() { # ENGINE NAME WANT WHAT
	local cg pid
	cg=$(hcg "$1" "$2")
	wait_for 60 hserver_pid "$cg" > /dev/null || { fail "$4: no server in $cg"; return 1; }
	pid=$(hserver_pid "$cg")
	ehost_in "$H" "$1" exec -d "$2" "$HOLD" connect "$PORT" > "$TMP/exec.out" 2>&1 ||
		{ fail "$4: $1 exec: $(cat "$TMP/exec.out")"; return 1; }
	expect_socket "$pid" "state=ESTABLISHED local=127.0.0.1:$PORT " "$3" "$4"
}
hlisted() { hk status 2> /dev/null | grep -qF "/sys/fs/cgroup/$1 idle="; }

unified_engine() { # ENGINE PARENT
	local engine=$1 parent=$2 name=kt-web-$$ cg id
	hrun "$engine" "$name" || return
	cg=$(hcg "$engine" "$name")
	id=$(ehost_in "$H" "$engine" inspect -f '{{.Id}}' "$name")
	hk attach "${KARGS[@]}" --container "$name" --engine "$engine" > "$TMP/out" 2> "$TMP/err"
	if [ $? = 0 ] && hlisted "$cg"; then ok "unified, $engine: attach --container $name: /sys/fs/cgroup/$cg"; else fail "attach --container: $(cat "$TMP/err")"; return; fi
	expect_text "$TMP/err" "unified, $engine: the note names the scope and its parent $parent" \
		"^kashim attach: /sys/fs/cgroup/$(re_quote "$cg") is the cgroup of $engine container ${id:0:12}: covered until it stops or restarts .* attach to $engine's parent cgroup /sys/fs/cgroup/$parent "
	hserved "$engine" "$name" "$WANT" "unified, $engine container by name: covered"
	ehost_in "$H" "$engine" restart -t 1 "$name" > /dev/null 2>&1 || { fail "$engine restart failed"; return; }
	if hlisted "$cg"; then fail "after the restart, still listed"; else ok "unified, $engine restart: no longer listed"; fi
	hserved "$engine" "$name" "$UNTOUCHED" "unified, after $engine restart: left alone, as the note said"
	expect_status 0 "unified: attach --lasting to $parent" hk attach --lasting "${KARGS[@]}" "$parent"
	ehost_in "$H" "$engine" restart -t 1 "$name" > /dev/null 2>&1 || { fail "$engine restart failed"; return; }
	hserved "$engine" "$name" "$WANT" "unified, $parent attached, $engine restart: covered"
	ehost_in "$H" "$engine" rm -f "$name" > /dev/null 2>&1
	hrun "$engine" "$name" || return
	hserved "$engine" "$name" "$WANT" "unified, $engine rm and run again under the same name: covered"
	ehost_in "$H" "$engine" rm -f "$name" > /dev/null 2>&1
	hk detach "$parent" > /dev/null 2>&1
}

test_unified() {
	ehost_usable || return
	ehost_prepare || return
	ehost_start "$H" || return
	ehost_import "$H" docker podman || { fail "import in the engine host: $(tail -n 3 "$TMP/import.log")"; return; }
	unified_engine docker system.slice
	unified_engine podman machine.slice
	# podman with the OCI hook: the scope of each start attached
	local name=kt-hooked-$$
	mkdir -p "$EHOST_X/hooks"
	printf 'idle = 37s\ninterval = 11s\ncount = 4\n' > "$EHOST_X/kashim.conf"
	sed "s|/etc/kashim.conf|/x/kashim.conf|" "$ROOT/scripts/oci-hooks/kashim.json" > "$EHOST_X/hooks/kashim.json"
	hrun podman "$name" --hooks-dir /x/hooks || return
	hserved podman "$name" "$WANT" "unified, podman with kashim's OCI hook: covered"
	ehost_in "$H" podman --hooks-dir /x/hooks restart -t 1 "$name" > /dev/null 2>&1 || { fail "podman restart failed"; return; }
	hserved podman "$name" "$WANT" "unified, podman restart with the OCI hook: covered"
}

run_tests
