#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run: timeout 900 (the first run on a machine builds the images' root with debootstrap, 3-6 min)
# Rootless Podman (issue 28, 2), as an unprivileged user that the test
# makes (useradd, which gives it subordinate uid and gid ranges) and
# removes, with what such a user needs here: XDG_RUNTIME_DIR (no logind),
# runc (crun refuses this machine's hybrid cgroups) and overlay storage in
# its own containers.conf and storage.conf, and a /dev/net/tun it may open
# (0600 here: no udev) bound over the real one in a private mount
# namespace, with a private network namespace (slirp4netns's side of it).
#   - the preload: a legacy server and client in a rootless container,
#     LD_PRELOAD and KASHIM_* given with -e: the kernel's view of their
#     connection, from the container's network namespace;
#   - the cgroup mode: a rootless container has no cgroup of its own; it
#     stays in the cgroup podman was started from.  Attaching there covers
#     the container's connections, and also slirp4netns's own socket on
#     the caller's side; a second cgroup for another container cannot be
#     had, short of starting podman from another cgroup.
# Everything the user runs is started in a cgroup of the test's own,
# killed and removed at the end with the user, pass or fail.
. "$(dirname "$0")/lib.sh"
. "$HELPERS/engines.sh"

U="" UH="" CG="" HOLDER=""

rl_cleanup() {
	trap '' TERM INT HUP
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		echo 1 > "$CG/cgroup.kill"
		wait_for 10 grep -qx 'populated 0' "$CG/cgroup.events"
		find "$CG" -depth -type d -exec rmdir {} + 2> /dev/null
	fi
	if [ -n "$U" ]; then
		# podman's lock file for the user, in /dev/shm, outlives it
		rm -f "/dev/shm/libpod_rootless_lock_$(id -u "$U")"
		userdel -r "$U" > /dev/null 2>&1
	fi
	cleanup
}

# ru CMD...: CMD as the user, in the holder's network and mount
# namespaces and in cgroup $CG (or $RU_CG), with the user's environment
# only.  The working directory is set after the user switch: one set by
# nsenter belongs to the mount namespace left behind, and getcwd fails.
ru() {
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' ru "${RU_CG:-$CG}" \
		nsenter -t "$HOLDER" -n -m -- runuser -u "$U" -- env -i -C "$UH" HOME="$UH" \
		XDG_RUNTIME_DIR="$UH/run" TMPDIR="$UH" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

rl_prepare() {
	need_root || return 1
	need_cmd podman runc slirp4netns newuidmap useradd userdel runuser nsenter mknod || return 1
	trap rl_cleanup EXIT
	engine_base || { fail "$ENGINE_WHY"; return 1; }
	chmod 711 "$TMP"
	U=kashim-rl-$$
	UH=$TMP/home
	if ! useradd -m -d "$UH" -s /bin/sh "$U" 2> "$TMP/useradd.log"; then
		U=""
		fail "useradd: $(cat "$TMP/useradd.log")"
		return 1
	fi
	if ! grep -q "^$U:" /etc/subuid || ! grep -q "^$U:" /etc/subgid; then
		fail "useradd gave $U no subordinate uid or gid range (/etc/subuid, /etc/subgid; SUB_UID_COUNT in /etc/login.defs)"
		return 1
	fi
	install -d -m 0700 -o "$U" -g "$U" "$UH/run" "$UH/.config" "$UH/.config/containers"
	printf '[engine]\nruntime = "runc"\n' > "$UH/.config/containers/containers.conf"
	printf '[storage]\ndriver = "overlay"\n' > "$UH/.config/containers/storage.conf"
	chown "$U:" "$UH"/.config/containers/*
	mknod -m 0666 "$TMP/tun" c 10 200
	CG=$(cgroup2_root)/kashim-rootless-$$-$RANDOM
	mkdir "$CG" || { fail "cannot create the test's cgroup $CG"; return 1; }
	bg unshare -n -m --propagation private sh -c \
		'ip link set lo up && mount --bind "$1" /dev/net/tun && echo ready && exec sleep 900' holder "$TMP/tun"
	HOLDER=$BG
	wait_for 10 grep -qx ready "$TMP/bg.$BG.log" || { fail "the holder of the namespaces did not start: $(cat "$TMP/bg.$BG.log")"; return 1; }
	public_copy "$LIB" "$HELPERS/legacy.py" "$HELPERS/hold.py" > "$TMP/pub.log" || { fail "$(cat "$TMP/pub.log")"; return 1; }
	if ! tar -C "$ENGINE_BASE" "${ENGINE_TAR_EXCLUDES[@]}" -c . | ru podman import - local/bookworm > "$TMP/import.log" 2>&1; then
		fail "rootless podman import of local/bookworm: $(tail -n 3 "$TMP/import.log")"
		return 1
	fi
}

# ctr_pid NAME: the PID of the user's container NAME (rootless podman
# shares this machine's pid namespace: its State.Pid is this shell's).
ctr_pid() { ru podman inspect --format '{{.State.Pid}}' "$1" 2> /dev/null | grep -v '^0$'; }
holder_listens() { nsenter -t "$HOLDER" -n ss -Htln "sport = :$1" | grep -q .; }
two_established() { [ "$(peek "$1" 2> /dev/null | grep -c ESTABLISHED)" -ge "$2" ]; }

test_rootless() {
	local pid rel slirp server p
	rl_prepare || return
	ru podman info --format 'rootless={{.Host.Security.Rootless}} {{.Host.CgroupManager}} cgroup {{.Host.CgroupsVersion}}, {{.Store.GraphDriverName}} storage, {{.Host.OCIRuntime.Name}}' > "$TMP/info" 2>&1
	echo "# rootless podman as $U: $(cat "$TMP/info")"

	# The preload, in a rootless container.
	ru podman run -d --name pre -v "$PUB:/kashim:ro" -e LD_PRELOAD=/kashim/libkashim.so \
		"${KENV[@]/#/--env=}" local/bookworm /usr/bin/python3 /kashim/legacy.py > "$TMP/run.log" 2>&1
	if ! pid=$(ctr_pid pre) || ! wait_for 30 two_established "$pid" 2; then
		fail "the rootless container did not connect: $(tail -n 3 "$TMP/run.log" | tr '\n' ';') $(ru podman logs pre 2>&1 | tail -n 3 | tr '\n' ';')"
		return
	fi
	nsenter -t "$pid" -n ss -tnoi state established > "$TMP/pre.ss"
	if [ "$(peek "$pid" | grep ESTABLISHED | grep -c "$WANT")" = 2 ] &&
		[ "$(grep -c 'timer:(keepalive' "$TMP/pre.ss")" = 2 ]; then
		ok "the preload in a rootless container: both ends of its connection read $WANT, $(grep -o 'timer:([^)]*)' "$TMP/pre.ss" | head -n 1) (ss -tnoi in its network namespace)"
	else
		fail "the preload in a rootless container: $(peek "$pid" | tr '\n' ';') $(tr '\n' ';' < "$TMP/pre.ss")"
	fi
	ru podman rm -f -t 0 pre > /dev/null 2>&1

	# The cgroup mode: the container is in the caller's cgroup.
	mkdir "$CG/caller"
	bg nsenter -t "$HOLDER" -n "$PY" "$HELPERS/hold.py" server 127.0.0.1 7001
	server=$BG
	wait_for 30 holder_listens 7001 || { fail "the server in the holder's network namespace did not listen"; return; }
	if ! "$ROOT/kashim" attach --idle 33 "$CG/caller" > "$TMP/attach.log" 2>&1; then
		fail "kashim attach on the caller's cgroup: $(cat "$TMP/attach.log")"
		return
	fi
	RU_CG=$CG/caller ru podman run -d --name cg --network slirp4netns:allow_host_loopback=true \
		-v "$PUB:/kashim:ro" local/bookworm /usr/bin/python3 /kashim/hold.py client 10.0.2.2 7001 > "$TMP/run.log" 2>&1
	if ! pid=$(ctr_pid cg) || ! wait_for 30 two_established "$pid" 1; then
		fail "the rootless container did not connect to 10.0.2.2: $(tail -n 3 "$TMP/run.log" | tr '\n' ';') $(ru podman logs cg 2>&1 | tail -n 3 | tr '\n' ';')"
		return
	fi
	rel=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
	if [ "$(cgroup2_root)$rel" = "$CG/caller" ] && [ -z "$(find "$CG/caller" -mindepth 1 -type d)" ]; then
		ok "a rootless container has no cgroup of its own: it reads 0::$rel, the cgroup podman was started from, which has no child"
	else
		fail "the rootless container's cgroup: 0::$rel; below the caller's: $(find "$CG/caller" -mindepth 1 -type d | tr '\n' ' ')"
	fi
	if peek "$pid" | grep ESTABLISHED | grep -q 'keepalive=1 idle=33 '; then
		ok "kashim attach on the caller's cgroup covers the rootless container's connection: $(peek "$pid" | grep ESTABLISHED | grep -o 'remote=.*')"
	else
		fail "kashim attached on the caller's cgroup, the container's connection reads: $(peek "$pid" | tr '\n' ';')"
	fi
	# slirp4netns's own socket to the server, on the caller's side: in
	# the same cgroup, so it has keepalive too; the server's end (started
	# elsewhere) has none.
	slirp=""
	for p in $(cat "$CG/caller/cgroup.procs"); do
		[ "$(cat "/proc/$p/comm" 2> /dev/null)" = slirp4netns ] && slirp=$p
	done
	if [ -n "$slirp" ] && peek "$slirp" | grep ESTABLISHED | grep -q 'remote=127.0.0.1:7001 keepalive=1 idle=33 ' &&
		peek "$server" | grep ESTABLISHED | grep -q 'keepalive=0 '; then
		ok "the same attachment covers slirp4netns's own connection to the server (pid $slirp, in the caller's network namespace: $(peek "$slirp" | grep 'remote=127.0.0.1:7001' | grep -o 'keepalive=[0-9]* idle=[0-9]*')), not the server's end"
	else
		fail "slirp4netns (pid ${slirp:-none}) in the caller's cgroup: $(peek "${slirp:-0}" 2>&1 | tr '\n' ';') the server: $(peek "$server" 2>&1 | tr '\n' ';')"
	fi
	"$ROOT/kashim" detach "$CG/caller" > /dev/null 2>&1
	ru podman rm -f -t 0 cg > /dev/null 2>&1
}

run_tests
