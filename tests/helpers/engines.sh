# SPDX-License-Identifier: MIT
# engines.sh: a private Docker Engine and a private rootful Podman for a
# test, started from nothing and removed without a trace, pass or fail.
# The measured facts behind every choice are in the shared
# CONTAINER-ENGINES.md of issue 28.
#
#   . tests/lib.sh; . tests/helpers/engines.sh
#   engine_docker_up || { echo "not ok - ...: $ENGINE_WHY"; exit 0; }
#   docker_ run --rm local/bookworm true      # /usr/bin/docker, this daemon
#   docker_ run -d --name srv local/bookworm python3 -m http.server 8080
#   pid=$(container_pid srv)                  # its PID as this shell sees it
#   container_netns_ss srv -tnoi              # ss in the container's netns
#   engine_podman_up && podman_ run --rm local/bookworm true
#   (engines_cleanup runs on EXIT, and on TERM/INT/HUP, in the shell that
#   started the engines, before the EXIT trap it had; call
#   engine_docker_down / engine_podman_down to stop one earlier.  Start
#   an engine shared by several tests in the file's shell, not in a
#   test's subshell.  A test killed outright takes its engines' processes
#   with it (--pdeathsig), and the next engine_*_up removes what it left:
#   engine_sweep.  docker-compose reads the exported DOCKER_HOST;
#   podman-compose runs with PATH=$ENGINE_PODMAN_DIR/bin:$PATH.)
#
# Where each engine runs, and why:
#   - dockerd runs in new network, mount and pid namespaces (its own
#     docker0 and iptables rules there, never here), with a tmpfs on /run
#     (it writes /run/docker and /run/containerd whatever its exec-root),
#     an overlay on /var/lib and its own /etc/docker, data-root, exec-root
#     and socket in a mktemp directory.  Its pid namespace makes a killed
#     test harmless: when dockerd dies, every shim and container dies with
#     it.  `engine_docker_up here` runs it in the caller's network and pid
#     namespaces instead (the documentation test, whose block already runs
#     in private ones and reads `docker inspect`'s pids literally).
#   - podman has no daemon: a holder process (tini) keeps the namespaces
#     (network, mount, pid; /run a tmpfs, /var/lib an overlay), and every
#     podman call enters them through $ENGINE_PODMAN_DIR/bin/podman (a
#     script, so podman-compose can be pointed at it with PATH).  runc and
#     cgroupfs, low default ulimits: crun and the default limits fail on
#     this machine's hybrid cgroups and capped root limits.
# Both import local/bookworm (podman: localhost/local/bookworm) from the
# debootstrap root of tests/helpers/fleetbase.sh, built once per machine.
# Every wait is bounded; a failure sets ENGINE_WHY to one line saying what
# did not become ready and the end of the engine's log.

ENGINES_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENGINE_BASE=${ENGINE_BASE:-/var/cache/kashim-fleet/bookworm}
ENGINE_WHY=""
ENGINE_DOCKER_DIR="" ENGINE_DOCKER_NS="" ENGINE_DOCKER_HERE=""
ENGINE_PODMAN_DIR="" ENGINE_PODMAN_NS=""
ENGINE_DOCKER_BIN=/usr/bin/docker # Debian's CLI, not /usr/local/bin's 28.x

# What a base image leaves out: documentation and apt's downloads.
ENGINE_TAR_EXCLUDES=(--exclude=./usr/share/doc --exclude=./usr/share/man
	--exclude=./usr/share/info --exclude=./usr/share/locale
	--exclude='./var/cache/apt/archives/*.deb' --exclude='./var/cache/apt/*.bin' --exclude=./var/lib/apt/lists
	--exclude=./.kashim-fleet)

# engines_trap: engines_cleanup on EXIT, before the EXIT trap the shell had
# (lib.sh's cleanup in a test's subshell).
engines_trap() {
	local prev
	prev=$(trap -p EXIT)
	eval "set -- $prev"
	case ${3:-} in
	*engines_cleanup*) ;;
	"") trap engines_cleanup EXIT ;;
	*) trap "engines_cleanup; $3" EXIT ;;
	esac
	trap 'exit 143' TERM INT HUP
}

# engines_cleanup: the engines this shell started (a test's subshell
# inherits its parent's variables, not its engines).
engines_cleanup() {
	trap '' TERM INT HUP # a stop signals the whole group, often twice
	engine_mine "$ENGINE_DOCKER_DIR" && engine_docker_down
	engine_mine "$ENGINE_PODMAN_DIR" && engine_podman_down
	return 0
}
engine_mine() {
	local me=$BASHPID # this shell's, not the command substitution's
	[ -n "$1" ] && [ "$(cat "$1/owner" 2> /dev/null)" = "$(engine_owner "$me")" ]
}

# engine_wait SECONDS WHAT CMD...: CMD until it succeeds, or ENGINE_WHY.
engine_wait() {
	local limit=$1 what=$2 end
	shift 2
	end=$((SECONDS + limit))
	until "$@" > /dev/null 2>&1; do
		if [ "$SECONDS" -ge "$end" ]; then
			ENGINE_WHY="$what did not become ready within $limit s"
			return 1
		fi
		sleep 0.2
	done
}

# engine_owner [PID]: PID (this shell) and its start time, which a reused
# PID does not have.
engine_owner() {
	local p=${1:-$BASHPID}
	echo "$p $(awk '{ print $22 }' "/proc/$p/stat" 2> /dev/null)"
}

# engine_sweep: what a test killed outright (SIGKILL: no trap ran) left
# behind, found by its directory whose owner is gone: its containers'
# cgroups and the directory.  Its processes died with it (--pdeathsig).
engine_sweep() {
	local d owner
	for d in "${TMPDIR:-/tmp}"/kashim-docker.* "${TMPDIR:-/tmp}"/kashim-podman.*; do
		[ -f "$d/owner" ] || continue
		owner=$(cat "$d/owner")
		[ "$(engine_owner "${owner%% *}")" = "$owner" ] && continue
		engine_rmdir_cgroups docker "$d/data/containers" "$(ls "$d/parent-made" 2> /dev/null)"
		engine_rmdir_cgroups libpod_parent "$d/ids" "$(ls "$d/parent-made" 2> /dev/null)"
		rm -rf "$d"
	done
}

# engine_dir ENGINE PARENT: the traps, then ENGINE_<ENGINE>_DIR, the
# engine's directory, that says who owns it and whether the engine's
# parent cgroup PARENT was made for it (then it goes with the engine).
engine_dir() {
	local d
	engines_trap
	engine_sweep
	engine_base || return 1
	d=$(mktemp -d "${TMPDIR:-/tmp}/kashim-$1.XXXXXX") || return 1
	engine_owner > "$d/owner"
	[ -d "/sys/fs/cgroup/pids/$2" ] || [ -d "/sys/fs/cgroup/unified/$2" ] || : > "$d/parent-made"
	if [ "$1" = docker ]; then ENGINE_DOCKER_DIR=$d; else ENGINE_PODMAN_DIR=$d; fi
}

# engine_base: the shared debootstrap root, built (locked, cached) once.
engine_base() {
	[ -f "$ENGINE_BASE/.kashim-fleet" ] && return 0
	bash "$ENGINES_HERE/fleetbase.sh" "$ENGINE_BASE" > /dev/null 2>&1 ||
		{ ENGINE_WHY="the base root $ENGINE_BASE could not be built (tests/helpers/fleetbase.sh)"; return 1; }
}

# engine_ns_init PID: the pid namespace's init that `unshare -f` (PID)
# forked: killing it kills everything in the namespace.
engine_ns_init() { pgrep -P "$1" | head -n 1; }

# The commands an engine's namespace runs before its engine: a private
# /run and /var/lib (an overlay whose writes land in DIR), lo up.  The
# image layers go on a tmpfs of the namespace too (each engine adds it):
# they vanish with it, where removing them from a busy disk took 15 s,
# more than a stopped test has.
engine_ns_prelude() {
	cat <<'EOF'
set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p "$D/varlib.up" "$D/varlib.work"
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$D/varlib.up,workdir=$D/varlib.work" /var/lib
ip link set lo up 2> /dev/null || true
EOF
}

# --- Docker ------------------------------------------------------------

docker_() {
	DOCKER_HOST=unix://$ENGINE_DOCKER_DIR/docker.sock DOCKER_CONFIG=$ENGINE_DOCKER_DIR/cli \
		HOME=$ENGINE_DOCKER_DIR/home "$ENGINE_DOCKER_BIN" "$@"
}

# engine_docker_up [here]: a private dockerd with local/bookworm; exports
# DOCKER_HOST and DOCKER_CONFIG (docker-compose reads them).
engine_docker_up() {
	local mode=${1:-} d ns=(-m -n -p -f --mount-proc)
	engine_dir docker docker || return 1
	d=$ENGINE_DOCKER_DIR
	mkdir -p "$d/etc" "$d/cli" "$d/home"
	echo '{ "storage-driver": "overlay2", "log-driver": "json-file" }' > "$d/daemon.json"
	[ "$mode" = here ] && ns=(-m -f) && ENGINE_DOCKER_HERE=1
	# setsid: the runner's stop signals the test's process group; the
	# daemon hears of it from engine_docker_down.  A test killed outright
	# takes the daemon with it: unshare gets KILL when the test's shell
	# dies (--pdeathsig), the namespace's init when unshare does.
	{ engine_ns_prelude
	  echo 'mount --bind "$D/etc" /etc/docker'
	  echo 'mkdir -p "$D/data/overlay2" && mount -t tmpfs -o mode=0700 tmpfs "$D/data/overlay2"'
	  echo 'exec dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" -H "unix://$D/docker.sock"'
	} > "$d/start.sh"
	D=$d setsid setpriv --pdeathsig KILL unshare "${ns[@]}" --kill-child --propagation private sh "$d/start.sh" > "$d/dockerd.log" 2>&1 < /dev/null &
	ENGINE_DOCKER_NS=$!
	export DOCKER_HOST=unix://$d/docker.sock DOCKER_CONFIG=$d/cli
	engine_wait 60 "dockerd ($d/dockerd.log)" docker_ version ||
		{ ENGINE_WHY="$ENGINE_WHY: $(tail -n 3 "$d/dockerd.log" | tr '\n' ' ')"; return 1; }
	engine_docker_import
}

engine_docker_import() {
	tar -C "$ENGINE_BASE" "${ENGINE_TAR_EXCLUDES[@]}" -c . |
		docker_ import - local/bookworm > "$ENGINE_DOCKER_DIR/import.log" 2>&1 ||
		{ ENGINE_WHY="docker import of $ENGINE_BASE failed: $(tail -n 2 "$ENGINE_DOCKER_DIR/import.log")"; return 1; }
}

engine_docker_down() {
	local d=$ENGINE_DOCKER_DIR ids
	[ -n "$d" ] || return 0
	# In a pid namespace of its own the daemon goes with everything it
	# started (engine_ns_stop); sharing the caller's, its containers go
	# first, or their shims would outlive it.
	if [ "$(engine_level docker)" = 0 ] && [ -S "$d/docker.sock" ]; then
		ids=$(timeout 20 "$ENGINE_DOCKER_BIN" -H "unix://$d/docker.sock" ps -aq 2> /dev/null)
		[ -z "$ids" ] || timeout 60 "$ENGINE_DOCKER_BIN" -H "unix://$d/docker.sock" rm -f $ids > /dev/null 2>&1
		engine_ns_stop "$ENGINE_DOCKER_NS" TERM
	else
		engine_ns_stop "$ENGINE_DOCKER_NS" KILL
	fi
	engine_rmdir_cgroups docker "$d/data/containers" "$(ls "$d/parent-made" 2> /dev/null)"
	rm -rf "$d"
	ENGINE_DOCKER_DIR="" ENGINE_DOCKER_NS=""
	[ "${DOCKER_HOST:-}" = "unix://$d/docker.sock" ] && unset DOCKER_HOST DOCKER_CONFIG
	return 0
}

# engine_alive PID: PID runs (an exited child of this shell stays a
# zombie until waited for, and kill -0 still finds it).
engine_alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2> /dev/null) && [ -n "$state" ] && [ "$state" != Z ]
}

# engine_ns_stop PID SIGNAL: the namespace that `unshare` PID made ends.
# KILL to the init of a pid namespace kills every process in it at once
# (nothing in it is kept: the engine's state is thrown away with its
# directory); TERM lets dockerd stop its containerd, up to 20 s, and KILL
# follows.
engine_ns_stop() {
	local u=$1 sig=$2 init i
	[ -n "$u" ] || return 0
	init=$(engine_ns_init "$u")
	[ -n "$init" ] && kill -"$sig" "$init" 2> /dev/null
	for i in $(seq 200); do
		engine_alive "$u" || break
		sleep 0.1
	done
	init=$(engine_ns_init "$u")
	[ -n "$init" ] && kill -KILL "$init" 2> /dev/null
	kill -KILL "$u" 2> /dev/null
	wait "$u" 2> /dev/null
	return 0
}

# engine_rmdir_cgroups PARENT IDDIR MADE: each container's cgroup (its ID
# is a directory of IDDIR) in every hierarchy, then PARENT when this test
# made it (another engine running on this machine may be using it).
engine_rmdir_cgroups() {
	local parent=$1 iddir=$2 made=$3 id h i
	for id in $(cd "$iddir" 2> /dev/null && echo *); do
		for h in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do
			for i in $(seq 50); do
				[ -d "$h" ] || break
				find "$h" -depth -mindepth 1 -type d -name "*$id*" -exec rmdir {} + 2> /dev/null
				[ -z "$(find "$h" -mindepth 1 -type d -name "*$id*" 2> /dev/null)" ] && break
				sleep 0.1
			done
		done
	done
	[ -n "$made" ] || return 0
	for h in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do
		# a cgroup's directory is never empty: rmdir refuses the busy ones
		[ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2> /dev/null
	done
	return 0
}

# container_pid NAME: the PID of container NAME's first process as this
# shell sees it.  The engine reports it in its own pid namespace; the
# process whose NSpid has that number at the engine's level and whose
# cgroup names the container is the same one.
container_pid() {
	local engine=docker nspid id p
	[ "${1:-}" = --podman ] && { engine=podman; shift; }
	nspid=$("${engine}_" inspect -f '{{.State.Pid}}' "$1") || return 1
	id=$("${engine}_" inspect -f '{{.Id}}' "$1") || return 1
	[ -n "$nspid" ] && [ "$nspid" != 0 ] || return 1
	for p in $(grep -l -- "$id" /proc/[0-9]*/cgroup 2> /dev/null | cut -d/ -f3); do
		awk -v n="$nspid" -v lv="$(engine_level "$engine")" \
			'$1 == "NSpid:" && $(lv + 2) == n { found = 1 } END { exit !found }' \
			"/proc/$p/status" 2> /dev/null && { echo "$p"; return 0; }
	done
	return 1
}

# engine_level ENGINE: how many pid namespaces below this shell's the
# engine runs (0 with `engine_docker_up here`).
engine_level() {
	[ "$1" = docker ] && [ -n "$ENGINE_DOCKER_HERE" ] && echo 0 || echo 1
}

# container_netns_ss [--podman] NAME SS-ARGS...: ss in the container's
# network namespace (the kernel's view of its sockets, from outside).
container_netns_ss() {
	local flag="" pid
	[ "$1" = --podman ] && { flag=--podman; shift; }
	pid=$(container_pid $flag "$1") || { echo "no running container $1" >&2; return 1; }
	shift
	nsenter -t "$pid" -n ss "$@"
}

# container_cgroup [--podman] NAME: the container's cgroup2 directory on
# this machine (the 0:: line of its process).
container_cgroup() {
	local pid rel
	pid=$(container_pid "$@") || return 1
	rel=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
	echo "$(. "$ENGINES_HERE/../lib.sh" && cgroup2_root)$rel"
}

# --- Podman ------------------------------------------------------------

podman_() { "$ENGINE_PODMAN_DIR/bin/podman" "$@"; }

# engine_podman_up: a rootful podman in a holder's namespaces, with
# localhost/local/bookworm.
engine_podman_up() {
	local d
	engine_dir podman libpod_parent || return 1
	d=$ENGINE_PODMAN_DIR
	mkdir -p "$d/bin" "$d/cni" "$d/tmp"
	# rootful podman keeps its locks in the machine's /dev/shm: removed
	# at the end unless they were there before
	[ -e /dev/shm/libpod_lock ] || : > "$d/shm-lock-ours"
	engine_podman_conf "$d"
	{ engine_ns_prelude
	  # On the graph root itself: podman unmounts its overlay directory
	  # after each command.  The containers' directories stay on disk,
	  # where engine_podman_down finds their IDs.
	  echo 'mkdir -p "$D/root" "$D/ids" && mount -t tmpfs -o mode=0700 tmpfs "$D/root"'
	  echo 'mkdir "$D/root/overlay-containers" && mount --bind "$D/ids" "$D/root/overlay-containers"'
	  echo 'exec tini -s -- sleep infinity'
	} > "$d/start.sh"
	D=$d setsid setpriv --pdeathsig KILL unshare -m -n -p -f --mount-proc --kill-child --propagation private sh "$d/start.sh" \
		> "$d/holder.log" 2>&1 < /dev/null &
	ENGINE_PODMAN_NS=$!
	engine_wait 30 "the podman holder ($d/holder.log)" engine_holder_ready ||
		{ ENGINE_WHY="$ENGINE_WHY: $(tail -n 3 "$d/holder.log" | tr '\n' ' ')"; return 1; }
	engine_podman_wrapper "$d" "$(engine_ns_init "$ENGINE_PODMAN_NS")"
	tar -C "$ENGINE_BASE" "${ENGINE_TAR_EXCLUDES[@]}" -c . |
		podman_ import - local/bookworm > "$d/import.log" 2>&1 ||
		{ ENGINE_WHY="podman import of $ENGINE_BASE failed: $(tail -n 2 "$d/import.log")"; return 1; }
}

# The holder is ready once its init runs tini (the mounts are made).
engine_holder_ready() {
	local init
	init=$(engine_ns_init "$ENGINE_PODMAN_NS") && [ -n "$init" ] &&
		[ "$(cat "/proc/$init/comm" 2> /dev/null)" = tini ]
}

engine_podman_conf() {
	local d=$1
	cat > "$d/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$d/tmp"
[network]
network_backend = "cni"
network_config_dir = "$d/cni"
EOF
	cat > "$d/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$d/root"
runroot = "$d/run"
EOF
	cp /etc/cni/net.d/87-podman-bridge.conflist "$d/cni/"
}

# $d/bin/podman: podman in the holder's namespaces, in the caller's
# working directory (entering a mount namespace resets it).
engine_podman_wrapper() {
	local d=$1 init=$2
	cat > "$d/bin/podman" <<EOF
#!/bin/sh
# podman in the namespaces of the holder $init (tests/helpers/engines.sh)
exec env -u DOCKER_CONFIG -u DOCKER_HOST CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf \\
	nsenter -t $init -n -m -p --wd="\$PWD" -- /usr/bin/podman "\$@"
EOF
	chmod 0755 "$d/bin/podman"
}

engine_podman_down() {
	local d=$ENGINE_PODMAN_DIR
	[ -n "$d" ] || return 0
	engine_ns_stop "$ENGINE_PODMAN_NS" KILL
	engine_rmdir_cgroups libpod_parent "$d/ids" "$(ls "$d/parent-made" 2> /dev/null)"
	[ -e "$d/shm-lock-ours" ] && rm -f /dev/shm/libpod_lock
	rm -rf "$d"
	ENGINE_PODMAN_DIR="" ENGINE_PODMAN_NS=""
	return 0
}
