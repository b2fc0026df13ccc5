# SPDX-License-Identifier: MIT
# An engine host: a systemd host (systemd-nspawn, unified cgroup
# hierarchy) that runs Docker and Podman with the systemd cgroup driver,
# as most servers and Kubernetes nodes do, on this machine whose own
# layout is hybrid.  Source it after lib.sh and nspawn.sh.
#
#   ehost_prepare          the base tree (tests/helpers/enginebase.sh,
#                          cached outside the checkout), the test's cgroup
#                          and kashim installed in a scratch prefix
#   ehost_start NAME       boots host NAME and waits until it runs;
#                          $EHOST_START_MS is how long that took
#   ehost_in NAME CMD...   CMD run inside as a service of the host's own
#                          systemd (its seccomp filter and capabilities
#                          apply), stdin, stdout, stderr and exit status
#                          passed on; EHOST_ENV=(VAR=VALUE...) for it
#   ehost_cgroup NAME      the host's cgroup tree as this machine names it
#                          (the directory its /sys/fs/cgroup shows)
#   ehost_import NAME ENGINE...  local/bookworm (engines.sh's base root)
#                          imported into the host's podman or docker
#   ehost_stop NAME        containers removed, poweroff, cgroups removed
#
# Inside, the host sees the checkout read-only at its own path ($ROOT),
# kashim installed (make install) read-only at /usr/local, and $TMP/NAME.x
# (writable, EHOST_X) at /x, engines.sh's base root ($ENGINE_BASE) read-only
# at /kashim-base.  Its root is an overlayfs of the base
# mounted in the host's own mount namespace (gone with it), so the cache
# stays as built; /var/lib/docker and /var/lib/containers are directories
# of $TMP, because overlay storage cannot have an overlayfs below it.
# EHOST_EXTRA: more systemd-nspawn arguments for the next ehost_start.
#
# Everything runs in $EHOST_CG, a cgroup of the test's own; the EXIT trap
# (ehost_cleanup) stops every host, kills what is left and removes the
# cgroups depth first, pass or fail.

declare -F engine_base > /dev/null || . "$HELPERS/engines.sh"
EHOST_BASE=${EHOST_BASE:-/var/cache/kashim-engines/bookworm}
EHOST_CG=""
EHOST_HOSTS=()
declare -gA EHOST_NSPAWN=() # NAME: its systemd-nspawn
EHOST_EXTRA=()
# The seccomp filter additions the engines need: the session keyring
# (runc), bpf(2) (runc's device filter, kashim attach).  CAP_BPF, which
# nspawn's default set lacks, so that a container can be given it as on a
# real node (its CAP_SYS_ADMIN would otherwise stand in for it unseen).
EHOST_SYSCALLS="bpf keyctl add_key request_key"

ehost_cleanup() {
	local n
	trap '' TERM INT HUP
	for n in "${EHOST_HOSTS[@]}"; do ehost_stop "$n" > /dev/null 2>&1; done
	[ -n "$EHOST_CG" ] && [ -d "$EHOST_CG" ] && nspawn_end_cgroup "$EHOST_CG"
	cleanup
}

# ehost_usable: root, the commands, cgroup.kill; else skips saying why.
ehost_usable() {
	need_root || return 1
	need_cmd systemd-nspawn debootstrap flock || return 1
	if [ -z "$(cgroup2_root)" ]; then
		skip "no cgroup2 mount in /proc/self/mountinfo"
		return 1
	fi
}

ehost_prepare() {
	EHOST_CG=$(cgroup2_root)/kashim-engine-$$-$RANDOM
	trap ehost_cleanup EXIT
	mkdir "$EHOST_CG" || { fail "cannot create the test's cgroup $EHOST_CG"; return 1; }
	if [ ! -e "$EHOST_CG/cgroup.kill" ]; then
		skip "no cgroup.kill (Linux 5.14) to end the engine host"
		return 1
	fi
	if ! timeout 900 bash "$HELPERS/enginebase.sh" "$EHOST_BASE" > "$TMP/enginebase.log" 2>&1; then
		fail "the engine host's tree $EHOST_BASE could not be built: $(tail -n 5 "$TMP/enginebase.log" | tr '\n' ';')"
		return 1
	fi
	engine_base || { fail "$ENGINE_WHY"; return 1; }
	if ! make -s -C "$ROOT" install DESTDIR="$TMP/prefix" PREFIX=/usr/local > "$TMP/install.log" 2>&1; then
		fail "make install DESTDIR=$TMP/prefix: $(tail -n 5 "$TMP/install.log" | tr '\n' ';')"
		return 1
	fi
}

# ehost_pid1 NAME: the host's systemd (PID 1 inside) as this machine
# numbers it.
ehost_pid1() {
	local p
	for p in $(cat "$EHOST_CG/$1/payload/init.scope/cgroup.procs" 2> /dev/null); do
		grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$p/status" 2> /dev/null || continue
		[ "$(cat "/proc/$p/comm" 2> /dev/null)" = systemd ] && echo "$p" && return 0
	done
	return 1
}

ehost_cgroup() { echo "$EHOST_CG/$1/payload"; }

ehost_running() {
	local pid
	pid=$(ehost_pid1 "$1") || return 1
	case $(nsenter -t "$pid" -a systemctl is-system-running 2> /dev/null) in
	running | degraded) return 0 ;;
	esac
	return 1
}

ehost_start() {
	local name=$1 h=$TMP/$1 start
	mkdir -p "$h.upper" "$h.work" "$h.root" "$h.docker" "$h.containers" "$h.x" "$EHOST_CG/$name"
	start=$(date +%s%N)
	# The overlay is mounted in a mount namespace of the host's own (it
	# goes when the host ends); nspawn puts itself in supervisor/ and the
	# host in payload/ below the cgroup it starts in.
	bg sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' engine "$EHOST_CG/$name" \
		env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 unshare -m --propagation private sh -c \
		'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && shift 4 && exec "$@"' \
		overlay "$EHOST_BASE" "$h.upper" "$h.work" "$h.root" \
		systemd-nspawn -q -D "$h.root" --machine="$name" --register=no --keep-unit \
		--private-network --link-journal=no --resolv-conf=off --timezone=off \
		--system-call-filter="$EHOST_SYSCALLS" --capability=CAP_BPF \
		--bind-ro="$ROOT" --bind-ro="$TMP/prefix/usr/local:/usr/local" --bind="$h.x:/x" \
		--bind-ro="$ENGINE_BASE:/kashim-base" --bind="$h.docker:/var/lib/docker" --bind="$h.containers:/var/lib/containers" \
		"${EHOST_EXTRA[@]}" \
		-b systemd.firstboot=off systemd.unit=multi-user.target < /dev/null
	EHOST_HOSTS+=("$name")
	EHOST_NSPAWN[$name]=$BG
	EHOST_X=$h.x
	if ! wait_for 90 ehost_running "$name"; then
		fail "the engine host $name did not reach running in 90 s: $(tail -n 5 "$TMP/bg.$BG.log" | tr '\n' ';')"
		return 1
	fi
	EHOST_START_MS=$((($(date +%s%N) - start) / 1000000))
}

# ehost_in NAME CMD...: CMD as a transient service of the host's own
# systemd, so that it runs under the host's seccomp filter, capabilities
# and cgroup tree as an engine's process would (nsenter -a alone would
# bypass the filter: a refusal there would never show).  Without
# INVOCATION_ID, as in a shell: podman, seeing it, would leave each conmon
# in the service, which stops it (after 90 s) when CMD ends.
EHOST_ENV=()
ehost_in() {
	local pid e envs=()
	pid=$(ehost_pid1 "$1") || { echo "engine host $1 is not running" >&2; return 125; }
	shift
	for e in "${EHOST_ENV[@]}"; do envs+=(--setenv="$e"); done
	nsenter -t "$pid" -a systemd-run --quiet --wait --pipe --collect \
		--working-directory=/ "${envs[@]}" -- env -u INVOCATION_ID "$@"
}

# ehost_import NAME ENGINE...: local/bookworm in each ENGINE (podman,
# docker) of host NAME, from the base root that engines.sh imports on this
# machine, with the same files left out.
ehost_import() {
	local name=$1 e
	shift
	for e in "$@"; do
		ehost_in "$name" sh -c 'e=$1; shift; tar -C /kashim-base "$@" -c . | $e import - local/bookworm' \
			import "$e" "${ENGINE_TAR_EXCLUDES[@]}" > "$TMP/import.log" 2>&1 || return 1
	done
}

# ehost_stop NAME: the engines' containers removed first (a container
# whose PID 1 ignores SIGTERM would hold the poweroff for 90 s), then the
# poweroff (SIGRTMIN+4 to the host's systemd), bounded; then whatever is
# left killed and the host's cgroups removed depth first.
ehost_stop() {
	local name=$1 pid
	[ -n "${EHOST_NSPAWN[$name]:-}" ] || return 0
	if pid=$(ehost_pid1 "$name"); then
		timeout 60 nsenter -t "$pid" -a sh -c \
			'podman pod rm -f -t 0 -a; podman rm -f -t 0 -a; ids=$(docker ps -aq); [ -z "$ids" ] || docker rm -f $ids' \
			> /dev/null 2>&1
		kill -s RTMIN+4 "$pid" 2> /dev/null
		wait_for 30 grep -qx 'populated 0' "$EHOST_CG/$name/cgroup.events"
	fi
	nspawn_end_cgroup "$EHOST_CG/$name"
	EHOST_NSPAWN[$name]=""
	return 0
}
