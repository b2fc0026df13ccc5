# SPDX-License-Identifier: MIT
# kashim-audit.timer and its hardened service under a real systemd (this
# machine's root booted with systemd-nspawn, kashim installed by make
# install at /usr/local, as tests/t_systemd.sh does).  Inside:
# - two services with connections: kt-pair.service as nobody, and
#   kt-private.service in a network namespace of its own (PrivateNetwork=)
#   with net.ipv4.tcp_retries2=3 there;
# - starting the timer runs the service at once; kashim.prom appears in
#   node_exporter's textfile directory by a rename (a reader holding the
#   old file still reads the old file, no temporary file is left), mode
#   0644, valid for promtool check metrics, and it says what root's own
#   kashim audit --prometheus says of both services (the hardening hides
#   nothing: the other user's sockets, the other namespace's tcp_retries2);
# - each capability of the unit's bounding set is needed: without
#   CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH the services are unreadable,
#   without CAP_SYS_ADMIN the private namespace's tcp_retries2 is not seen;
# - systemd-analyze security scores the unit, and the same unit without
#   its hardening (printed: the figures of docs/fleet.md);
# - a drop-in (OnUnitActiveSec=2s) makes it run again by itself.
. "$(dirname "$0")/lib.sh"
. "$HELPERS/nspawn.sh"

BOOT_LIMIT=150

test_audit_timer() {
	nspawn_usable || return
	need_cmd promtool || return
	nspawn_prepare || return
	cat > "$SD/res/pair.py" <<-'PY'
	import socket, sys, time
	port = int(sys.argv[1])
	l = socket.socket()
	l.bind(("127.0.0.1", port))
	l.listen(4)
	c = socket.create_connection(("127.0.0.1", port))
	a = l.accept()
	print("ready", flush=True)
	time.sleep(600)
	PY
	cat > "$SD/units/kt-pair.service" <<-UNIT
	[Service]
	User=nobody
	ExecStart=$PY /kt-res/pair.py 46020
	UNIT
	cat > "$SD/units/kt-private.service" <<-UNIT
	[Service]
	PrivateNetwork=yes
	ExecStartPre=/bin/sh -c 'echo 3 > /proc/sys/net/ipv4/tcp_retries2'
	ExecStart=$PY /kt-res/pair.py 46021
	UNIT
	nspawn_plan
	{ echo "T='$T: inside'"; cat "$HELPERS/audit_timer_plan.sh"; } > "$SD/res/plan.sh"
	nspawn_boot audit-timer unified bpf "$BOOT_LIMIT"
}

# Both units as shipped pass systemd-analyze verify (no unknown directive,
# no bad value), with ExecStart= pointed at this build.
test_units_verify() {
	need_cmd systemd-analyze || return
	mkdir "$TMP/units"
	sed "s|/usr/local/bin/kashim|$ROOT/kashim|" "$ROOT/scripts/systemd/kashim-audit.service" > "$TMP/units/kashim-audit.service"
	cp "$ROOT/scripts/systemd/kashim-audit.timer" "$TMP/units/"
	if (cd "$TMP/units" && systemd-analyze verify --man=no ./kashim-audit.timer ./kashim-audit.service) > "$TMP/verify" 2>&1 &&
		! grep -qiE 'unknown|invalid|ignoring' "$TMP/verify"; then
		ok "systemd-analyze verify: kashim-audit.timer and kashim-audit.service"
	else
		fail "systemd-analyze verify: $(head -n 5 "$TMP/verify" | tr '\n' ';')"
	fi
}

run_tests
