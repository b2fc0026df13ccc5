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
# - a drop-in (OnUnitActiveSec=2s) makes it run again by itself;
# - programs started from /tmp and /var/tmp, which the unit's own mount
#   namespace replaces (PrivateTmp=), are named as they are, verified, not
#   "(another mount namespace)".
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
	cp "$ROOT/tests/tcphold" "$SD/res/tcphold"
	nspawn_plan
	{ echo "T='$T: inside'"; cat "$HELPERS/audit_timer_plan.sh"; echo "$HIDDEN_PATHS_PLAN"; } > "$SD/res/plan.sh"
	nspawn_boot audit-timer unified bpf "$BOOT_LIMIT"
}

# Appended to the plan: a server and its client run from /tmp, another
# pair from /var/tmp, as transient services of the container's systemd; the
# unit's file must name them as they are.
HIDDEN_PATHS_PLAN='
# --- programs where the unit has private directories ---------------------
cp /kt-res/tcphold /tmp/kt-hold && cp /kt-res/tcphold /var/tmp/kt-hold
systemd-run -q --unit kt-tmp-serve /tmp/kt-hold serve 46030
systemd-run -q --unit kt-vartmp-serve /var/tmp/kt-hold serve 46031
if wait_listen 46030 && wait_listen 46031; then
	systemd-run -q --unit kt-tmp-connect /tmp/kt-hold connect 46030
	systemd-run -q --unit kt-vartmp-connect /var/tmp/kt-hold connect 46031
	wait_for 60 sh -c "[ \"\$(ss -Htn state established \"( sport = :46030 or sport = :46031 )\" | grep -c .)\" = 2 ]" ||
		fail "the scene did not get ready: no connections on 46030 and 46031 within 60 s"
	systemctl start kashim-audit.service
	for exe in /tmp/kt-hold /var/tmp/kt-hold; do
		if grep -q "^kashim_audit_connections{program=\"$exe\"," "$F" &&
			! grep -qF "program=\"$exe (another mount namespace)\"" "$F"; then
			ok "a program started from ${exe%/*}, private to the unit (PrivateTmp=): program=\"$exe\", not marked"
		else
			fail "$exe: $(grep -F "$exe" "$F" | head -n 3 | tr "\n" ";")"
		fi
	done
else
	fail "the scene did not get ready: nothing listens on 46030 and 46031 within 60 s: $(journalctl -q -o cat -u kt-vartmp-serve | tail -n 3 | tr "\n" ";")"
fi
systemctl stop kt-tmp-serve kt-tmp-connect kt-vartmp-serve kt-vartmp-connect 2> /dev/null
rm -f /tmp/kt-hold /var/tmp/kt-hold
'

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
