#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# enginebase.sh [DIR]: the root tree of the engine host (a systemd host
# that runs Docker and Podman with the systemd cgroup driver on a unified
# hierarchy; tests/helpers/enginehost.sh boots it), built once with
# debootstrap --variant=minbase and kept OUTSIDE the checkout (DIR, by
# default /var/cache/kashim-engines/bookworm).  Each host boots from an
# overlayfs of it, so the tree itself stays as built.  Rebuilt when missing
# or when its stamp does not match this recipe; a lock keeps two test runs
# from building it at once.
#
# debootstrap's own policy-rc.d keeps docker and containerd from starting
# while the tree is built, and the build runs in a pid namespace of its own.
set -eu
dir=${1:-/var/cache/kashim-engines/bookworm}
mirror=${EHOST_MIRROR:-$(sh "$(dirname "$0")/aptmirror.sh")} ||
	{ echo "enginebase.sh: no Debian archive in this machine's apt sources; set EHOST_MIRROR" >&2; exit 1; }
include=systemd,systemd-sysv,dbus,iproute2,procps,docker.io,podman,containernetworking-plugins,crun,runc,catatonit,iptables
stamp="enginebase 1 bookworm minbase $include"

fresh() { [ -f "$dir/.kashim-engines" ] && [ "$(cat "$dir/.kashim-engines")" = "$stamp" ]; }
fresh && exit 0
mkdir -p "${dir%/*}"
exec 9> "${dir%/*}/.lock"
flock 9
fresh && exit 0

new=$dir.new
rm -rf "$new"
mkdir -p "$new"
unshare -p -f -m --mount-proc debootstrap --variant=minbase --include="$include" \
	bookworm "$new" "$mirror" > "${dir%/*}/debootstrap.log" 2>&1 ||
	{ tail -n 20 "${dir%/*}/debootstrap.log" >&2; exit 1; }
rm -f "$new"/var/cache/apt/archives/*.deb

# Its own name and machine id, so that it is not taken for this machine;
# every host booted from the tree is the same machine, one at a time per
# name (enginehost.sh names each boot).
echo kashim-engines > "$new/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 kashim-engines\n' > "$new/etc/hosts"
: > "$new/etc/machine-id"
rm -f "$new/var/lib/dbus/machine-id"
systemd-machine-id-setup --root="$new" > /dev/null 2>&1

# Timers and services that would only slow the boot or prompt for input.
for u in apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
	dpkg-db-backup.timer dpkg-db-backup.service e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer podman-auto-update.timer getty@tty1.service console-getty.service \
	systemd-pstore.service systemd-firstboot.service systemd-networkd-wait-online.service; do
	ln -sfn /dev/null "$new/etc/systemd/system/$u"
done

# Podman in an nspawn without cgroup controllers and with nspawn's
# limits: no pids limit to write (no pids.max there), ulimits within the
# container's hard limits, and runc (crun refuses RLIMIT_MEMLOCK here).
mkdir -p "$new/etc/containers"
cat > "$new/etc/containers/containers.conf" <<-'CONF'
[containers]
pids_limit = 0
default_ulimits = ["nofile=1024:1024", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
echo "$stamp" > "$new/.kashim-engines"
rm -rf "$dir"
mv "$new" "$dir"
