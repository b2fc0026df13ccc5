# SPDX-License-Identifier: MIT
# The checks of tests/t_audit_timer.sh, run inside the booted container by
# tests/helpers/insystemd.sh (lib.sh's helpers; no awk here).
DIR=/var/lib/prometheus/node-exporter
F=$DIR/kashim.prom
AUDIT=/usr/local/bin/kashim
UNITFILE=/usr/local/lib/systemd/system/kashim-audit.service

inode() { stat -c %i "$1" 2> /dev/null; }
# series FILE UNIT: the kashim_audit_connections* and worst-case lines of UNIT.
series() { grep -E "^kashim_audit_(connections|worst_case_seconds)[a-z_]*\{.*unit=\"$2\"" "$1" | sort; }
# busy FILE UNIT: the unit's busy worst case, in whole seconds.
busy() { series "$1" "$2" | grep 'bound="busy"' | sed 's/.* //; s/\..*//'; }
conns() { ss -Htn state established | grep -c .; }
connected() { [ "$(conns)" -ge 2 ]; }

mkdir -p "$DIR"
systemctl start kt-pair.service kt-private.service
# kt-private's pair is in its own namespace: its ss is not ours
if ! wait_for 60 connected || ! wait_for 60 systemctl is-active -q kt-private.service; then
	fail "the services did not connect ($(conns) connection(s)): $(systemctl status kt-pair.service 2>&1 | tail -n 6 | tr "\n" ";")"
fi
ppid=$(systemctl show -P MainPID kt-private.service)
wait_for 60 sh -c "nsenter -t $ppid -n ss -Htn state established | grep -q ." ||
	fail "kt-private.service did not connect in its namespace"

# --- the timer runs the service; the file comes by a rename -----------
echo "old" > "$F"
exec {held}< "$F"
before=$(inode "$F")
systemctl start kashim-audit.timer
if wait_for 60 sh -c "[ \"\$(stat -c %i $F)\" != $before ] && [ \"\$(systemctl show -P ActiveState kashim-audit.service)\" = inactive ]"; then
	ok "starting the timer runs kashim-audit.service at once: $(systemctl show -P Result kashim-audit.service), $(wc -c < "$F") bytes"
else
	fail "no new $F within 60 s: $(systemctl status kashim-audit.service 2>&1 | tail -n 5 | tr '\n' ';')"
fi
if [ "$(cat <&"$held")" = old ] && [ -z "$(ls -A "$DIR" | grep -vx kashim.prom)" ] &&
	[ "$(stat -c %a "$F")" = 644 ]; then
	ok "written by a rename: the old file's reader still reads the old file, no temporary file left, mode 0644"
else
	fail "not a rename: held file says '$(cat <&"$held")', directory: $(ls -la "$DIR" | tr '\n' ';'), mode $(stat -c %a "$F")"
fi
exec {held}<&-
if promtool check metrics < "$F" > "$TMP/promtool" 2>&1; then
	ok "promtool check metrics: valid"
else
	fail "promtool check metrics: $(head -n 5 "$TMP/promtool" | tr '\n' ';')"
fi
if systemctl list-timers --all kashim-audit.timer | grep -q kashim-audit.service; then
	ok "the timer is scheduled: $(systemctl show -P TimersMonotonic kashim-audit.timer | tr -s '\n' ' ')"
else
	fail "list-timers: $(systemctl list-timers --all 2>&1 | tr '\n' ';')"
fi

# --- what the hardened unit sees is what root sees ---------------------
"$AUDIT" audit --prometheus > "$TMP/root.prom" 2> "$TMP/root.err"
same=1
for u in kt-pair.service kt-private.service; do
	if [ -z "$(series "$F" $u)" ] || [ "$(series "$F" $u)" != "$(series "$TMP/root.prom" $u)" ]; then
		same=0
		fail "$u: the unit says '$(series "$F" $u | tr '\n' ';')', root says '$(series "$TMP/root.prom" $u | tr '\n' ';')'"
	fi
done
[ "$same" = 1 ] && ok "the hardened unit sees both services as root does: $(series "$F" kt-pair.service | grep -c .) + $(series "$F" kt-private.service | grep -c .) series"
b=$(busy "$F" kt-private.service)
if [ -n "$b" ] && [ "$b" -lt 60 ]; then
	ok "the private namespace's tcp_retries2=3 is read there: busy worst case ${b} s"
else
	fail "kt-private.service busy worst case '$b' s: not its namespace's tcp_retries2=3"
fi
if grep -qx 'kashim_audit_processes{outcome="unreadable"} 0' "$F" &&
	grep -q '^kashim_audit_tcp_keepalive_probes_total{netns="net:\[' "$F"; then
	ok "no process unreadable; the evidence counters are there ($(grep -c '^kashim_audit_tcp_keepalive_probes_total' "$F") namespace(s))"
else
	fail "$(grep -E 'outcome=|_total\{' "$F" | tr '\n' ';')"
fi

# --- each capability is needed -----------------------------------------
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNITFILE")
for cap in $caps; do
	name=kashim-audit-no-$cap
	out=$DIR/no-$cap.prom
	sed -e "s/^CapabilityBoundingSet=.*/CapabilityBoundingSet=$(echo " $caps " | sed "s/ $cap / /; s/^ //; s/ \$//")/" \
		-e "s|^Environment=KASHIM_AUDIT_OUTPUT=.*|Environment=KASHIM_AUDIT_OUTPUT=$out|" \
		"$UNITFILE" > "/etc/systemd/system/$name.service"
done
systemctl daemon-reload
for cap in $caps; do
	name=kashim-audit-no-$cap
	out=$DIR/no-$cap.prom
	systemctl start "$name.service" 2> /dev/null
	case $cap in
	CAP_SYS_PTRACE | CAP_DAC_READ_SEARCH)
		u=$(grep -o 'outcome="unreadable"} [0-9]*' "$out" 2> /dev/null | sed 's/.* //')
		if [ "${u:-0}" -gt 0 ] && [ -z "$(series "$out" kt-pair.service)" ]; then
			ok "without $cap: $u process(es) unreadable, kt-pair.service (nobody) unseen"
		else
			fail "without $cap nothing is lost (unreadable '${u:-none}', kt-pair: $(series "$out" kt-pair.service | head -n 1)): drop it from the unit"
		fi
		;;
	CAP_SYS_ADMIN)
		b=$(busy "$out" kt-private.service)
		if [ -n "$b" ] && [ "$b" -ge 60 ]; then
			ok "without $cap: the private namespace's tcp_retries2 is not read (busy worst case ${b} s, the host's)"
		else
			fail "without $cap the busy worst case is still '${b}' s: drop it from the unit"
		fi
		;;
	*) fail "the unit holds $cap, which this test does not know to be needed" ;;
	esac
done
rm -f /etc/systemd/system/kashim-audit-no-*.service "$DIR"/no-*.prom

# --- the exposure score, hardened and not ------------------------------
sed -n '1,/^ExecStart=/p' "$UNITFILE" > /etc/systemd/system/kashim-audit-plain.service
systemctl daemon-reload
hard=$(systemd-analyze security kashim-audit.service 2>&1 | sed -n 's/^→ Overall exposure level for kashim-audit.service: //p')
plain=$(systemd-analyze security kashim-audit-plain.service 2>&1 | sed -n 's/^→ Overall exposure level for kashim-audit-plain.service: //p')
if [ -n "$hard" ] && [ -n "$plain" ] && [ "${hard%%.*}" -lt "${plain%%.*}" ]; then
	ok "systemd-analyze security: kashim-audit.service $hard; without its hardening $plain"
else
	fail "systemd-analyze security: hardened '$hard', plain '$plain': $(systemd-analyze security kashim-audit.service 2>&1 | tail -n 3 | tr '\n' ';')"
fi
rm -f /etc/systemd/system/kashim-audit-plain.service

# --- the period, by a drop-in ------------------------------------------
mkdir -p /etc/systemd/system/kashim-audit.timer.d
printf '[Timer]\nOnUnitActiveSec=\nOnUnitActiveSec=2s\nAccuracySec=1s\n' \
	> /etc/systemd/system/kashim-audit.timer.d/period.conf
systemctl daemon-reload
first=$(inode "$F")
if wait_for 30 sh -c "[ \"\$(stat -c %i $F)\" != $first ]" && second=$(inode "$F") &&
	wait_for 30 sh -c "[ \"\$(stat -c %i $F)\" != $second ]"; then
	ok "with OnUnitActiveSec=2s from a drop-in, the file is replaced again and again by the timer alone"
else
	fail "OnUnitActiveSec=2s: the file was not replaced twice in 60 s: $(systemctl list-timers --all 2>&1 | grep kashim)"
fi
systemctl stop kashim-audit.timer

# --- the period drop-in the timer's comment shows, on a freshly booted host
# A copy of the pair whose service never ran in this boot, with the drop-in
# exactly as kashim-audit.timer's comment gives it: the first run must still
# come when the timer starts (an empty OnUnitActiveSec= also clears
# OnActiveSec=0, and OnUnitActiveSec= alone never fires for a unit that
# never ran).
TIMERFILE=${UNITFILE%.service}.timer
sed "s|^Environment=KASHIM_AUDIT_OUTPUT=.*|Environment=KASHIM_AUDIT_OUTPUT=$DIR/fresh.prom|" "$UNITFILE" \
	> /etc/systemd/system/kt-fresh.service
cp "$TIMERFILE" /etc/systemd/system/kt-fresh.timer
mkdir -p /etc/systemd/system/kt-fresh.timer.d
sed -n '/^#   \[Timer\]$/,/^[^#]\|^#$/s/^#   //p' "$TIMERFILE" \
	> /etc/systemd/system/kt-fresh.timer.d/period.conf
systemctl daemon-reload
systemctl start kt-fresh.timer
if grep -q '^OnUnitActiveSec=$' /etc/systemd/system/kt-fresh.timer.d/period.conf &&
	wait_for 30 test -s "$DIR/fresh.prom"; then
	ok "the drop-in the timer's comment shows keeps the first run on a host where audit never ran: $(tr '\n' ' ' < /etc/systemd/system/kt-fresh.timer.d/period.conf)"
else
	fail "with the documented drop-in ($(tr '\n' ' ' < /etc/systemd/system/kt-fresh.timer.d/period.conf)) the timer did not run audit in 30 s: $(systemctl list-timers --all 2>&1 | grep kt-fresh)"
fi
systemctl stop kt-fresh.timer
