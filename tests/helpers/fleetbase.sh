#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fleetbase.sh DIR: the root tree the fleet test's hosts boot from
# (tests/t_fleet.sh), built once with debootstrap --variant=minbase from
# Debian's archive and kept OUTSIDE the checkout (DIR, by default
# /var/cache/kashim-fleet/bookworm): each host is an overlayfs of it.  It
# is rebuilt when missing or when its stamp does not match this recipe.
#
# Nothing the packages start may reach this machine: a policy-rc.d that
# exits 101 is in the tree before any package is configured, and the build
# runs in a pid namespace of its own (whatever it started dies with it).
# Everything that may differ between hosts (machine id, hostname, ssh host
# keys, ports) is removed here and written per host by the test.
set -eu
dir=${1:-/var/cache/kashim-fleet/bookworm}
# The archive this machine's apt reads from (FLEET_MIRROR overrides it).
mirror=${FLEET_MIRROR:-$(sh "$(dirname "$0")/aptmirror.sh")} ||
	{ echo "fleetbase.sh: no Debian archive in this machine's apt sources; set FLEET_MIRROR" >&2; exit 1; }
include=systemd,systemd-sysv,dbus,openssh-server,openssh-sftp-server,python3,python3-apt,prometheus-node-exporter,iproute2,procps
stamp="fleetbase 2 bookworm minbase $include"

[ -f "$dir/.kashim-fleet" ] && [ "$(cat "$dir/.kashim-fleet")" = "$stamp" ] && exit 0
mkdir -p "${dir%/*}"
exec 9> "${dir%/*}/.lock"
flock 9
[ -f "$dir/.kashim-fleet" ] && [ "$(cat "$dir/.kashim-fleet")" = "$stamp" ] && exit 0

new=$dir.new
rm -rf "$new"
mkdir -p "$new/usr/sbin"
printf '#!/bin/sh\n# the fleet base: no package starts a daemon while it is built\nexit 101\n' \
	> "$new/usr/sbin/policy-rc.d"
chmod 0755 "$new/usr/sbin/policy-rc.d"
unshare -p -f -m --mount-proc debootstrap --variant=minbase --include="$include" \
	bookworm "$new" "$mirror" > "${dir%/*}/debootstrap.log" 2>&1 ||
	{ tail -n 20 "${dir%/*}/debootstrap.log" >&2; exit 1; }

# sshd refuses a key for a root whose password field is locked ('!' or
# '!*') when PAM is not in the way; '*' is "no password, not locked".
chroot "$new" usermod -p '*' root
rm -f "$new"/etc/ssh/ssh_host_*
: > "$new/etc/machine-id"
rm -f "$new/var/lib/dbus/machine-id"
# What must never run on a host that shares this machine's network
# namespace, or that would only slow its boot: masked in the base.
for u in systemd-networkd.service systemd-networkd.socket systemd-resolved.service \
	systemd-timesyncd.service ssh.socket systemd-firstboot.service \
	systemd-machine-id-commit.service getty@.service console-getty.service \
	serial-getty@.service apt-daily.timer apt-daily-upgrade.timer fstrim.timer \
	e2scrub_all.timer e2scrub_reap.service dpkg-db-backup.timer \
	systemd-logind.service; do
	ln -sfn /dev/null "$new/etc/systemd/system/$u"
done
# Their .wants directories go too: systemctl disable removes a .wants
# directory it leaves empty, so an empty one would not survive a rollout
# and its removal (tests/t_fleet.sh compares the hosts before and after).
rm -rf "$new"/etc/systemd/system/timers.target.wants "$new"/etc/systemd/system/getty.target.wants
# A host of the fleet is a real host: its packages start their services.
rm -f "$new/usr/sbin/policy-rc.d"
echo "$stamp" > "$new/.kashim-fleet"
rm -rf "$dir"
mv "$new" "$dir"
