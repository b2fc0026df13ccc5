# SPDX-License-Identifier: MIT
# A fleet of real systemd hosts on this machine, for tests/t_fleet.sh.
# Source it after lib.sh and nspawn.sh.
#
# Each host boots with systemd-nspawn from an overlayfs of the debootstrap
# base that tests/helpers/fleetbase.sh keeps in $FLEET_BASE (outside the
# checkout); the overlay is mounted in the host's own mount namespace, so it
# goes with the host, and its upper layer is in $TMP.  The hosts share this
# machine's network namespace: every port they open is on 127.0.0.1 in the
# test's own range.  Everything (hosts, Prometheus, Alertmanager, the
# webhook receiver, ansible-playbook and its ssh control masters) runs in
# one cgroup of the test's own, $FLEET_CG, ended with cgroup.kill and
# removed depth first by fleet_cleanup (the EXIT trap), pass or fail.

FLEET_BASE=${FLEET_BASE:-/var/cache/kashim-fleet/bookworm}
FLEET_CG=""
FLEET_N=3

# fleet_ports: $PORTS, the first of 40 free ports on 127.0.0.1 in
# 47000-47999, at a random block of 40 (two runs at once take two blocks).
#   PORTS+i: host i's sshd, PORTS+10+i: its node_exporter,
#   PORTS+20: Prometheus, PORTS+21: Alertmanager, PORTS+22: the receiver.
fleet_block_free() {
	local p
	for p in $(seq "$1" $(($1 + 39))); do
		ss -Htan "sport = :$p" | grep -q . && return 1
	done
	return 0
}
fleet_ports() {
	local try b
	for try in $(seq 25); do
		b=$((47000 + 40 * (RANDOM % 25)))
		fleet_block_free "$b" && PORTS=$b && return 0
	done
	return 1
}

# fleet_run DIR CMD...: CMD started in cgroup $FLEET_CG/DIR (made here).
fleet_run() {
	mkdir -p "$FLEET_CG/$1"
	local dir=$FLEET_CG/$1
	shift
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' fleet "$dir" "$@"
}

fleet_cleanup() {
	local s
	# ansible's ssh control masters, each told to exit, then whatever is
	# left in the cgroup killed with it
	for s in "$TMP"/cp/*; do
		[ -S "$s" ] && ssh -o ControlPath="$s" -O exit dummy > /dev/null 2>&1
	done
	[ -n "$FLEET_CG" ] && [ -d "$FLEET_CG" ] && nspawn_end_cgroup "$FLEET_CG"
	# FLEET_KEEP=DIR: the run's logs, configurations and snapshots kept there
	if [ -n "${FLEET_KEEP:-}" ]; then
		mkdir -p "$FLEET_KEEP" && cp "$TMP"/*.log "$TMP"/*.yml "$TMP"/*.ini "$TMP"/*.cfg "$TMP"/snap* \
			"$TMP"/*.jsonl "$TMP"/compare* "$FLEET_KEEP"/ 2> /dev/null
	fi
	cleanup
}

# fleet_prepare: the cgroup, the ports, the ssh key and the base tree.
fleet_prepare() {
	local root
	root=$(cgroup2_root)
	FLEET_CG=$root/kashim-fleet-$$-$RANDOM
	trap fleet_cleanup EXIT
	mkdir "$FLEET_CG" || { fail "cannot create the test's cgroup $FLEET_CG"; return 1; }
	if [ ! -e "$FLEET_CG/cgroup.kill" ]; then
		skip "no cgroup.kill (Linux 5.14) to end the fleet"
		return 1
	fi
	fleet_ports || { fail "no block of 40 free ports in 47000-47999"; return 1; }
	mkdir -p "$TMP/cp" "$TMP/ansible"
	ssh-keygen -q -t ed25519 -N '' -C kashim-fleet-test -f "$TMP/id" || { fail "ssh-keygen"; return 1; }
	: > "$TMP/known_hosts"
	if ! timeout 600 bash "$HELPERS/fleetbase.sh" "$FLEET_BASE" > "$TMP/base.log" 2>&1; then
		fail "the base tree $FLEET_BASE could not be built: $(tail -n 5 "$TMP/base.log" | tr '\n' ';')"
		return 1
	fi
}

# fleet_host I: host I's upper layer: its identity (hostname, machine id,
# ssh host key), sshd and node_exporter on its ports, root's key, the
# legacy service, and fleet.target, the target it boots.
fleet_host() {
	local i=$1 h=$TMP/h$1 u
	u=$h/upper
	mkdir -p "$h/work" "$h/root" "$u/etc/ssh/sshd_config.d" "$u/etc/default" \
		"$u/etc/systemd/system" "$u/root/.ssh" "$u/usr/local/lib"
	echo "kf$i" > "$u/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 kf%s\n' "$i" > "$u/etc/hosts"
	od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$u/etc/machine-id"
	echo >> "$u/etc/machine-id"
	ssh-keygen -q -t ed25519 -N '' -C "kf$i" -f "$u/etc/ssh/ssh_host_ed25519_key"
	echo "[127.0.0.1]:$((PORTS + i)) $(cut -d' ' -f1,2 "$u/etc/ssh/ssh_host_ed25519_key.pub")" >> "$TMP/known_hosts"
	cat > "$u/etc/ssh/sshd_config.d/fleet.conf" <<-CONF
	Port $((PORTS + i))
	ListenAddress 127.0.0.1
	HostKey /etc/ssh/ssh_host_ed25519_key
	PermitRootLogin prohibit-password
	CONF
	install -m 0700 -d "$u/root/.ssh"
	install -m 0600 "$TMP/id.pub" "$u/root/.ssh/authorized_keys"
	# an operator's file beside where kf2 keeps the .deb (kashim_deb_dest),
	# in root's home with Debian's mode (mkdir -p made it 0755, and the
	# overlay shows the upper layer's mode)
	echo "root's own notes" > "$u/root/notes.txt"
	chmod 0700 "$u/root"
	echo "ARGS=\"--web.listen-address=127.0.0.1:$((PORTS + 10 + i)) --collector.textfile.directory=/var/lib/prometheus/node-exporter\"" \
		> "$u/etc/default/prometheus-node-exporter"
	install -m 0755 "$HELPERS/legacy.py" "$u/usr/local/lib/legacy.py"
	cat > "$u/etc/systemd/system/legacy.service" <<-UNIT
	[Unit]
	Description=A legacy service holding an idle connection (no keepalive of its own)
	[Service]
	ExecStart=/usr/bin/python3 /usr/local/lib/legacy.py
	PrivateNetwork=yes
	UNIT
	cat > "$u/etc/systemd/system/fleet.target" <<-UNIT
	[Unit]
	Description=A host of the kashim fleet test
	Requires=basic.target
	After=basic.target
	Wants=systemd-user-sessions.service ssh.service prometheus-node-exporter.service legacy.service
	AllowIsolate=yes
	UNIT
}

# fleet_boot I: host I booted in $FLEET_CG/hI; $HOSTPID[I] is its nspawn.
HOSTPID=()
fleet_boot() {
	local i=$1 h=$TMP/h$1
	bg fleet_run "h$i" env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 \
		unshare -m --propagation private sh -c \
		'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && shift 4 && exec "$@"' \
		overlay "$FLEET_BASE" "$h/upper" "$h/work" "$h/root" \
		systemd-nspawn -q -D "$h/root" --register=no --keep-unit --machine="kf$i" \
		--link-journal=no --resolv-conf=off --timezone=off \
		--capability=CAP_NET_ADMIN,CAP_BPF,CAP_PERFMON --system-call-filter="bpf pidfd_open pidfd_getfd" \
		-b systemd.unit=fleet.target
	HOSTPID[i]=$BG
}

# fleet_pid1 I: host I's systemd (PID 1 inside), as this machine numbers it.
fleet_pid1() {
	local p
	for p in $(find "$FLEET_CG/h$1" -name cgroup.procs -exec cat {} + 2> /dev/null); do
		grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$p/status" 2> /dev/null || continue
		[ "$(cat "/proc/$p/comm" 2> /dev/null)" = systemd ] && echo "$p" && return 0
	done
	return 1
}

# fleet_in I CMD...: CMD inside host I (all its namespaces).
fleet_in() {
	local pid
	pid=$(fleet_pid1 "$1") || return 1
	shift
	nsenter -t "$pid" -a "$@"
}

fleet_running() {
	case $(fleet_in "$1" systemctl is-system-running 2> /dev/null) in
	running | degraded) return 0 ;;
	esac
	return 1
}

# fleet_unit_pid I UNIT: the main process of UNIT in host I, as this
# machine numbers it (from the unit's cgroup).
fleet_unit_pid() {
	local f
	f=$(find "$FLEET_CG/h$1" -path "*/system.slice/$2/cgroup.procs" 2> /dev/null | head -n 1)
	[ -n "$f" ] && head -n 1 "$f" | grep .
}
