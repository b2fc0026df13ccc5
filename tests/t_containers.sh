# SPDX-License-Identifier: MIT
# tests/run: timeout 900 (the first run on a machine builds the debootstrap base)
# The container engines as operators run them (issue 28, section 2): a
# Docker Engine 20.10, a rootful Podman 4.3 and docker-compose 1.29, each
# started by the test in namespaces of its own (tests/helpers/engines.sh),
# running real programs through kashim-entrypoint.  Checked from outside:
# the kernel's keepalive values of the containers' sockets (sockpeek on the
# container's process, in its own network namespace), the time a client
# takes to notice a peer that went silent (a blackhole qdisc in the
# server's network namespace), and that this machine's own network
# namespace and cgroups are as they were, with nothing left behind.
# docs/containers.md's recipes are run by the documentation test.
. "$(dirname "$0")/lib.sh"
. "$HELPERS/engines.sh"

# The containers' configuration: values no default has.
CENV=(-e KASHIM_IDLE=37 -e KASHIM_INTERVAL=11 -e KASHIM_COUNT=4)
CTX="" # the build context: kashim installed into a stage, a Dockerfile
IMAGE=local/kashim-t

# What the test must not change in this machine's own network namespace.
machine_net() {
	ip -o link | sed 's/^[0-9]*: //; s/ link\/.*//' | sort
	iptables-save 2> /dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	sysctl -n net.ipv4.ip_forward
}
leftovers() {
	ls -d /sys/fs/cgroup/*/docker/* /sys/fs/cgroup/*/libpod_parent/* 2> /dev/null |
		grep -E '/(libpod-)?[0-9a-f]{64}$' | grep -F -f "$TOP/ids" 2> /dev/null
	ls -d "$TOP"/kashim-docker.* "$TOP"/kashim-podman.* 2> /dev/null
}

preconditions() {
	[ "$(id -u)" = 0 ] || { echo "skip - t_containers: needs root (engines in namespaces)"; return 1; }
	local c
	for c in dockerd containerd runc podman conmon docker-compose tini nsenter tc; do
		command -v "$c" > /dev/null || { echo "skip - t_containers: $c is not installed"; return 1; }
	done
	[ -x /usr/bin/docker ] || { echo "skip - t_containers: /usr/bin/docker (docker.io) is not installed"; return 1; }
}

# The image every test runs: local/bookworm with kashim installed by make
# install into /usr/local, and kashim-entrypoint its entrypoint.
make_context() {
	CTX=$TOP/ctx
	mkdir -p "$CTX/stage"
	make -s -C "$ROOT" install PREFIX=/usr/local DESTDIR="$CTX/stage" > "$TOP/install.log" 2>&1 ||
		{ echo "not ok - t_containers: make install DESTDIR: $(tail -n 3 "$TOP/install.log")"; return 1; }
	cp "$HELPERS/hold.py" "$CTX/stage/usr/local/bin/"
	printf '%s\n' 'FROM local/bookworm' 'COPY stage/ /' \
		'ENTRYPOINT ["/usr/local/bin/kashim-entrypoint"]' > "$CTX/Dockerfile"
}

TOP=$(mktemp -d)
export TMPDIR=$TOP # the engines' directories: a leftover is found below
: > "$TOP/ids"
preconditions || { rm -rf "$TOP"; exit 0; }
before=$(machine_net)
first=$SECONDS start=$SECONDS
if ! engine_docker_up; then
	echo "not ok - t_containers: the Docker Engine: $ENGINE_WHY"
	DOCKER_OK=0
else
	echo "# t_containers: dockerd ready and local/bookworm imported in $((SECONDS - start)) s"
	DOCKER_OK=1
fi
start=$SECONDS
if engine_podman_up; then
	echo "# t_containers: podman ready and local/bookworm imported in $((SECONDS - start)) s"
	PODMAN_OK=1
else
	echo "not ok - t_containers: the podman engine: $ENGINE_WHY"
	PODMAN_OK=0
fi
trap 'engines_cleanup; rm -rf "$TOP"' EXIT
make_context || exit 0
[ "$DOCKER_OK" = 0 ] || docker_ build -q -t "$IMAGE" "$CTX" > "$TOP/build.log" 2>&1 ||
	{ echo "not ok - t_containers: docker build: $(tail -n 3 "$TOP/build.log")"; DOCKER_OK=0; }

# docker_running NAME: NAME's process is up (the engine says so).
running() { [ "$("$1"_ inspect -f '{{.State.Running}}' "$2" 2> /dev/null)" = true ]; }

# expect_container ENGINE NAME PATTERN WANT WHAT: a socket of container
# NAME's first process matches PATTERN and carries WANT (the kernel's view,
# read from outside the container).
expect_container() {
	local engine=$1 name=$2 pid flag=""
	[ "$engine" = podman ] && flag=--podman
	pid=$(wait_for 60 running "$engine" "$name" && container_pid $flag "$name") ||
		{ fail "the scene did not get ready: $engine container $name is not running: $("$engine"_ logs "$name" 2>&1 | tail -n 3 | tr '\n' ' ')"; return 1; }
	echo "$name" >> "$TOP/names"
	"$engine"_ inspect -f '{{.Id}}' "$name" >> "$TOP/ids"
	expect_socket "$pid" "$3" "$4" "$5"
}

need_docker() { [ "$DOCKER_OK" = 1 ] || { fail "no Docker Engine (above)"; return 1; }; }

# Two containers on a network of their own (the daemon's namespace), a
# server and a client, both through kashim-entrypoint: both ends of the
# connection carry kashim's values.
test_docker_server_and_client() {
	need_docker || return
	local net=kt$$
	docker_ network create "$net" > /dev/null
	docker_ run -d --name "srv$$" --network "$net" "${CENV[@]}" "$IMAGE" \
		python3 /usr/local/bin/hold.py server 0.0.0.0 8080 > /dev/null
	docker_ run -d --name "cli$$" --network "$net" "${CENV[@]}" "$IMAGE" \
		python3 /usr/local/bin/hold.py client "srv$$" 8080 > /dev/null
	expect_container docker "srv$$" "state=ESTABLISHED local=[^ ]*:8080 " "$WANT" "docker: the server's accepted connection"
	expect_container docker "cli$$" "state=ESTABLISHED .*:8080 " "$WANT" "docker: the client's connection, by the service name"
	docker_ rm -f "srv$$" "cli$$" > /dev/null
	docker_ network rm "$net" > /dev/null
}

# A peer that goes silent (a blackhole qdisc in the server's network
# namespace: the client's probes get no answer) is noticed by the client
# within kashim's bound, idle + interval x count = 2 + 1 x 2 = 4 s
# (TCP_USER_TIMEOUT), and not before the idle time.
test_docker_dead_peer() {
	need_docker || return
	local net=kd$$ spid t0 took status
	docker_ network create "$net" > /dev/null
	docker_ run -d --name "dsrv$$" --network "$net" "$IMAGE" python3 /usr/local/bin/hold.py server 0.0.0.0 8080 > /dev/null
	docker_ run -d --name "dcli$$" --network "$net" -e KASHIM_IDLE=2 -e KASHIM_INTERVAL=1 -e KASHIM_COUNT=2 \
		"$IMAGE" python3 /usr/local/bin/hold.py client "dsrv$$" 8080 > /dev/null
	expect_container docker "dcli$$" "state=ESTABLISHED .*:8080 " "keepalive=1 idle=2 interval=1 count=2 user_timeout=4000" \
		"docker: the client before its peer goes silent" || return
	spid=$(container_pid "dsrv$$")
	t0=$(date +%s.%N)
	nsenter -t "$spid" -n tc qdisc add dev eth0 root blackhole ||
		{ fail "tc qdisc add dev eth0 root blackhole in the server's namespace failed"; return; }
	status=$(timeout 60 /usr/bin/docker wait "dcli$$")
	took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	local said
	said=$(docker_ logs "dcli$$" 2>&1 | tail -n 1)
	if [ -z "$status" ]; then
		fail "the client did not notice its silent peer within 60 s (bound 4 s)"
	elif awk -v t="$took" 'BEGIN { exit !(t >= 2 && t < 30) }' && [[ $said == *"timed out"* ]]; then
		ok "docker: the client noticed its silent peer after $took s (bound 4 s): $said"
		echo "# t_containers: dead peer noticed in $took s (idle 2 s, interval 1 s, count 2)"
	else
		fail "the client ended after $took s (want 2 to 30 s: bound 4 s) saying: $said"
	fi
	docker_ rm -f "dsrv$$" "dcli$$" > /dev/null
	docker_ network rm "$net" > /dev/null
}

# Rootful podman, same image built by podman from the same context, on
# podman's default CNI bridge (in the holder's namespace).
test_podman() {
	[ "$PODMAN_OK" = 1 ] || { fail "no podman engine (above)"; return; }
	podman_ build -q -t "$IMAGE" "$CTX" > "$TMP/build.log" 2>&1 ||
		{ fail "podman build: $(tail -n 3 "$TMP/build.log")"; return; }
	podman_ run -d --name "psrv$$" "${CENV[@]}" "$IMAGE" sh -c \
		'python3 /usr/local/bin/hold.py server 127.0.0.1 8080 & exec python3 /usr/local/bin/hold.py client 127.0.0.1 8080' > /dev/null
	expect_container podman "psrv$$" "state=ESTABLISHED .*remote=[^ ]*:8080 " "$WANT" "podman (rootful): the client's connection"
	local pid
	pid=$(container_pid --podman "psrv$$") && pid=$(children "$pid" | head -n 1)
	expect_socket "${pid:-0}" "state=ESTABLISHED local=[^ ]*:8080 " "$WANT" "podman (rootful): the server's accepted connection"
	podman_ rm -f -t 0 "psrv$$" > /dev/null
}

# Compose: a legacy server and a client, kashim through the entrypoint of
# the image, the settings in the compose file; values read back on both.
test_compose() {
	need_docker || return
	local p=kc$$
	mkdir "$TMP/compose"
	cp -r "$CTX/." "$TMP/compose/"
	cat > "$TMP/compose/docker-compose.yml" <<'EOF'
version: "3.7"
services:
  legacy:
    build: .
    command: ["python3", "/usr/local/bin/hold.py", "server", "0.0.0.0", "8080"]
    environment: {KASHIM_IDLE: "37", KASHIM_INTERVAL: "11", KASHIM_COUNT: "4"}
    init: true
  client:
    build: .
    command: ["python3", "/usr/local/bin/hold.py", "client", "legacy", "8080"]
    environment: {KASHIM_IDLE: "37", KASHIM_INTERVAL: "11", KASHIM_COUNT: "4", HOLD_WAIT: "120"}
    depends_on: [legacy]
    init: true
EOF
	(cd "$TMP/compose" && timeout 300 docker-compose -p "$p" up -d --build) > "$TMP/compose.log" 2>&1 ||
		{ fail "docker-compose up: $(tail -n 3 "$TMP/compose.log")"; return; }
	# With init: true the program is not the container's first process.
	expect_compose "${p}_legacy_1" "state=ESTABLISHED local=[^ ]*:8080 " "docker-compose: the legacy server's connection"
	expect_compose "${p}_client_1" "state=ESTABLISHED .*:8080 " "docker-compose: the client's connection"
	(cd "$TMP/compose" && timeout 120 docker-compose -p "$p" down -t 0) > /dev/null 2>&1
}

# podman-compose (1.0.3) with the rootful podman (its podman is the
# engine's wrapper, first in PATH): build, up and down work, but services
# cannot reach each other by name on Podman 4.3's CNI backend without the
# dnsname plugin, which Debian 12 does not have (netavark and aardvark-dns
# would give names).  So the legacy client talks to its server inside one
# service.
test_podman_compose() {
	[ "$PODMAN_OK" = 1 ] || { fail "no podman engine (above)"; return; }
	local p=pc$$ pid
	mkdir "$TMP/pcompose"
	cp -r "$CTX/." "$TMP/pcompose/"
	cat > "$TMP/pcompose/docker-compose.yml" <<'EOF'
version: "3.7"
services:
  legacy:
    build: .
    command: ["sh", "-c", "python3 /usr/local/bin/hold.py server 127.0.0.1 8080 & exec python3 /usr/local/bin/hold.py client 127.0.0.1 8080"]
    environment: {KASHIM_IDLE: "37", KASHIM_INTERVAL: "11", KASHIM_COUNT: "4", HOLD_WAIT: "120"}
EOF
	(cd "$TMP/pcompose" && PATH=$ENGINE_PODMAN_DIR/bin:$PATH timeout 300 podman-compose -p "$p" up -d) \
		> "$TMP/pcompose.log" 2>&1 || { fail "podman-compose up: $(tail -n 3 "$TMP/pcompose.log")"; return; }
	expect_container podman "${p}_legacy_1" "state=ESTABLISHED .*remote=[^ ]*:8080 " "$WANT" "podman-compose: the legacy client's connection"
	pid=$(container_pid --podman "${p}_legacy_1") && pid=$(children "$pid" | head -n 1)
	expect_socket "${pid:-0}" "state=ESTABLISHED local=[^ ]*:8080 " "$WANT" "podman-compose: the legacy server's accepted connection"
	(cd "$TMP/pcompose" && PATH=$ENGINE_PODMAN_DIR/bin:$PATH timeout 120 podman-compose -p "$p" down -t 0) > /dev/null 2>&1
}

# expect_compose NAME PATTERN WHAT: as expect_container, on the program
# that the container's init (docker-init) started.
expect_compose() {
	local pid
	pid=$(wait_for 60 running docker "$1" && container_pid "$1") &&
		wait_for 60 children "$pid" > /dev/null && pid=$(children "$pid" | head -n 1) ||
		{ fail "the scene did not get ready: $1 has no program: $(docker_ logs "$1" 2>&1 | tail -n 3 | tr '\n' ' ')"; return; }
	docker_ inspect -f '{{.Id}}' "$1" >> "$TOP/ids"
	expect_socket "$pid" "$2" "$WANT" "$3"
}

# none_named TEXT: no process has TEXT in its command line (pgrep leaves
# itself out; an `sh -c` around it would match).
none_named() { ! pgrep -f "$1" > /dev/null; }

# A test stopped from outside (tests/run's bound: TERM to its process
# group) stops its engine and leaves nothing; one killed outright (KILL:
# no trap runs) takes its engine's processes with it (--pdeathsig), and
# the next engine_*_up sweeps its directory and cgroups.
test_stopped_engine_leaves_nothing() {
	need_docker || return
	local sig
	for sig in TERM KILL; do
		mkdir -p "$TMP/$sig"
		cat > "$TMP/$sig/run.sh" <<'EOF'
. "$1/lib.sh"; . "$1/helpers/engines.sh"
engine_docker_up || exit 1
docker_ run -d local/bookworm sleep 600 > "$TMPDIR/id"
sleep 600
EOF
		TMPDIR=$TMP/$sig setsid bash "$TMP/$sig/run.sh" "$ROOT/tests" > "$TMP/$sig/log" 2>&1 &
		local pg=$!
		if ! wait_for 120 test -s "$TMP/$sig/id"; then
			fail "the scene did not get ready: the $sig run's container did not start within 120 s: $(tail -n 2 "$TMP/$sig/log")"
			kill -KILL -- -"$pg" 2> /dev/null
			return
		fi
		kill -"$sig" -- -"$pg"
		wait "$pg" 2> /dev/null # no job notice for the killed run
		wait_for 30 none_named "$TMP/$sig" ||
			{ fail "$sig: the engine's processes outlived the test by 30 s: $(pgrep -af "$TMP/$sig" | head -n 2)"; continue; }
		[ "$sig" = KILL ] && TMPDIR=$TMP/$sig engine_sweep
		cat "$TMP/$sig/id" >> "$TOP/ids"
		local left after=""
		[ "$sig" = KILL ] && after=" (after the next engine's sweep)"
		left="$(ls -d "$TMP/$sig"/kashim-docker.* 2> /dev/null)$(ls -d /sys/fs/cgroup/*/docker/"$(cat "$TMP/$sig/id")" 2> /dev/null)"
		if [ -z "$left" ]; then
			ok "a test stopped by $sig leaves no daemon, container, cgroup or directory$after"
		else
			fail "a test stopped by $sig left: $(echo "$left" | head -n 3 | tr '\n' ' ')"
		fi
	done
}

run_tests
engines_cleanup
trap - EXIT
after=$(machine_net)
T="t_containers: machine"
if [ "$before" = "$after" ]; then
	ok "this machine's links, iptables rules and ip_forward are as before the engines ran"
else
	fail "this machine's network namespace changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -n 5 | tr '\n' ' ')"
fi
left=$(leftovers)
if [ -z "$left" ] && ! pgrep -f "$TOP" > /dev/null; then
	ok "no engine, container, cgroup or directory left behind"
else
	fail "left behind: $(echo "$left" | head -n 5 | tr '\n' ' ') $(pgrep -af "$TOP" | head -n 3 | tr '\n' ' ')"
fi
rm -rf "$TOP"
echo "# t_containers.sh: $((SECONDS - first)) s"
