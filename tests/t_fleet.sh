#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run: timeout 1200 (the first run on a machine builds the hosts' base with debootstrap, 3-6 min)
# A fleet on this machine, end to end (issue 22): three real systemd hosts
# (systemd-nspawn, each an overlayfs of a debootstrap'd Debian 12 base kept
# outside the checkout by tests/helpers/fleetbase.sh), each with its own
# sshd and node_exporter on 127.0.0.1 and a legacy service holding an idle
# connection without keepalive.  Prometheus scrapes them with the shipped
# rules (scripts/prometheus/kashim.rules.yml, only their `for:` shortened),
# Alertmanager delivers to a webhook receiver the test runs, and
# ansible-playbook rolls kashim out over ssh with contrib/ansible's role:
#   1. the audit alone (the package and kashim-audit.timer): the uncovered
#      alert fires and reaches the receiver with host and unit;
#   2. the rollout (a drop-in for the legacy service): the fleet query shows
#      no uncovered connection, the kernel shows keepalive on the service's
#      socket, the resolved notification arrives;
#   3. a dead peer on one host moves that host's evidence counters, seen
#      through Prometheus, and no other host's;
#   4. the same playbook again changes nothing (changed=0); --check --diff
#      shows a change without making it (on one host); a bad value is
#      refused by kashim check before it reaches the host (on another);
#   5. kashim_state=absent leaves every host's files as they were before 1,
#      the legacy service running without kashim again.
# Every wait is for a state, bounded.  Everything runs in one cgroup of the
# test's own, killed and removed at the end, also when interrupted.
. "$(dirname "$0")/lib.sh"
. "$HELPERS/nspawn.sh"
. "$HELPERS/fleet.sh"

# The fleet query, as docs/fleet.md shows it: the promql block of its
# section (tests/t_rules.sh checks that the rules' unit tests evaluate it).
FLEET_QUERY=$(awk '/^## The fleet query/ { m = 1; next } m && /^```promql/ { b = 1; next } b && /^```/ { exit } b { print }' \
	"$ROOT/docs/fleet.md")
RULES=$ROOT/scripts/prometheus/kashim.rules.yml
PROM="" HOOK=""

preconditions() {
	need_root || return 1
	need_cmd systemd-nspawn debootstrap ansible-playbook prometheus prometheus-alertmanager promtool \
		ssh ssh-keygen nsenter unshare tc dpkg-buildpackage || return 1
	if [ -z "$(cgroup2_root)" ]; then
		skip "no cgroup2 mount in /proc/self/mountinfo"
		return 1
	fi
	if ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2> /dev/null; then
		skip "no overlayfs in this kernel"
		return 1
	fi
}

q() { "$PY" "$HELPERS/fleetq.py" query "$PROM" "$1"; }
# hosts_in CMD...: the hosts (kf1..kf3) named in CMD's output, sorted, one line
hosts_in() { "$@" 2> /dev/null | awk '{ print $1 " " $2 }' | sort -u | tr '\n' ';'; }

# playbook NAME ARGS...: ansible-playbook over ssh in the test's cgroup; its
# output in $TMP/NAME.log, the time it took in $PLAY_S, status returned.
playbook() {
	local name=$1 start rc
	shift
	start=$(date +%s%N)
	fleet_run ansible env ANSIBLE_CONFIG="$TMP/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 \
		ansible-playbook -i "$TMP/inventory.ini" "$ROOT/contrib/ansible/site.yml" "$@" > "$TMP/$name.log" 2>&1
	rc=$?
	PLAY_S=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	return $rc
}

# recap NAME: "kf1 changed=N failed=N unreachable=N;..." from a run's recap
recap() {
	sed -n '/PLAY RECAP/,$p' "$TMP/$1.log" |
		awk '$1 ~ /^kf/ { c = f = u = ""; for (i = 3; i <= NF; i++) { split($i, kv, "=");
			if (kv[1] == "changed") c = kv[2]; if (kv[1] == "failed") f = kv[2]; if (kv[1] == "unreachable") u = kv[2] }
			printf "%s changed=%s failed=%s unreachable=%s;", $1, c, f, u }'
}

# legacy_state I: the kernel's view of the legacy service's connection in host I
legacy_state() {
	local pid
	pid=$(fleet_unit_pid "$1" legacy.service) || return 1
	peek "$pid" 2> /dev/null | grep 'state=ESTABLISHED' | grep 'remote=127.0.0.1:7000'
}
legacy_uncovered() { legacy_state "$1" | grep -q 'keepalive=0'; }
legacy_covered() { legacy_state "$1" | grep -q 'keepalive=1 idle=2 interval=1 count=2'; }

all_hosts() {
	local i
	for i in $(seq "$FLEET_N"); do "$@" "$i" || return 1; done
}
hosts_ready() { fleet_running "$1" && listening $((PORTS + $1)) && listening $((PORTS + 10 + $1)) && legacy_uncovered "$1"; }

start_monitoring() {
	local i targets=""
	# The shipped rules with only their hold times (for:) shortened, as the
	# scrape and evaluation intervals are: the expressions are the shipped ones.
	sed -E 's/^([[:space:]]*for:).*/\1 2s/' "$RULES" > "$TMP/kashim.rules.yml"
	if [ -n "$(diff <(grep -vE '^[[:space:]]*for:' "$RULES") <(grep -vE '^[[:space:]]*for:' "$TMP/kashim.rules.yml"))" ]; then
		fail "the test's rules differ from the shipped ones in more than for:"
		return 1
	fi
	promtool check rules "$TMP/kashim.rules.yml" > "$TMP/promtool.log" 2>&1 ||
		{ fail "promtool check rules: $(tail -n 3 "$TMP/promtool.log")"; return 1; }
	for i in $(seq "$FLEET_N"); do
		targets+="
      - targets: ['127.0.0.1:$((PORTS + 10 + i))']
        labels: {instance: kf$i}"
	done
	cat > "$TMP/prometheus.yml" <<-CONF
	global: {scrape_interval: 1s, evaluation_interval: 1s}
	rule_files: ['$TMP/kashim.rules.yml']
	alerting:
	  alertmanagers:
	    - static_configs: [{targets: ['127.0.0.1:$((PORTS + 21))']}]
	scrape_configs:
	  - job_name: node
	    static_configs:$targets
	CONF
	cat > "$TMP/alertmanager.yml" <<-CONF
	route:
	  receiver: hook
	  group_by: [alertname, instance, unit]
	  group_wait: 1s
	  group_interval: 1s
	  repeat_interval: 1h
	receivers:
	  - name: hook
	    webhook_configs: [{url: 'http://127.0.0.1:$((PORTS + 22))/', send_resolved: true}]
	CONF
	HOOK=$TMP/hook.jsonl
	PROM=http://127.0.0.1:$((PORTS + 20))
	bg fleet_run mon "$PY" "$HELPERS/webhook.py" $((PORTS + 22)) "$HOOK"
	bg fleet_run mon prometheus-alertmanager --config.file="$TMP/alertmanager.yml" \
		--storage.path="$TMP/am" --web.listen-address=127.0.0.1:$((PORTS + 21)) --cluster.listen-address=
	bg fleet_run mon prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
		--web.listen-address=127.0.0.1:$((PORTS + 20)) --rules.alert.resend-delay=1s
}

targets_up() { [ "$(q 'count(up == 1)' | awk '{ print $3 }')" = "$FLEET_N" ]; }

write_ansible() {
	local i
	cat > "$TMP/ansible.cfg" <<-CONF
	[defaults]
	roles_path = $ROOT/contrib/ansible/roles
	local_tmp = $TMP/ansible/tmp
	remote_tmp = /tmp/.ansible-kashim-test
	host_key_checking = True
	retry_files_enabled = False
	forks = $FLEET_N
	[ssh_connection]
	control_path_dir = $TMP/cp
	ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=$TMP/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
	pipelining = True
	CONF
	{
		echo "[kashim]"
		for i in $(seq "$FLEET_N"); do echo "kf$i ansible_host=127.0.0.1 ansible_port=$((PORTS + i))"; done
		echo
		echo "[kashim:vars]"
		echo "ansible_connection=ssh"
		echo "ansible_user=root"
		echo "ansible_ssh_private_key_file=$TMP/id"
		echo "ansible_python_interpreter=/usr/bin/python3"
		echo "kashim_deb=$TMP/kashim.deb"
		echo 'kashim_config={"idle": "2s", "interval": "1s", "count": 2}'
		echo 'kashim_dropin_services=["legacy"]'
		echo "kashim_audit_interval=2s"
	} > "$TMP/inventory.ini"
}

# alerts_at STATUS: the hosts whose KashimUncoveredConnections for
# legacy.service reached the receiver with STATUS
alerts_at() { "$PY" "$HELPERS/fleetq.py" hook "$HOOK" "$1" | awk '$1 == "KashimUncoveredConnections" && $3 == "legacy.service" { print $2 }' | sort -u | tr '\n' ' '; }
alerts_are() { [ "$(alerts_at "$1")" = "$2" ]; }

# counter NAME I: kashim_audit_tcp_NAME_total of the network namespace of
# host I's legacy service, through Prometheus (the hosts share this
# machine's namespace otherwise: its counters are every test's)
netns_of() { readlink "/proc/$(fleet_unit_pid "$1" legacy.service)/ns/net"; }
counter() { q "kashim_audit_tcp_${1}_total{instance=\"kf$2\",netns=\"${NETNS[$2]}\"}" | awk '{ print $3 }'; }
counter_above() { local v; v=$(counter "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "${3:-0}" ]; }
NETNS=()

built_deb() {
	local deb newest
	git -C "$ROOT" rev-parse --is-inside-work-tree > /dev/null 2>&1 || return 0
	deb=$ROOT/build/deb/kashim_$(make -s --no-print-directory -C "$ROOT" version)_$(dpkg --print-architecture).deb
	[ -f "$deb" ] || return 0
	# the files make deb packs (scripts/deb): tracked, and new ones not ignored
	newest=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 -r stat -c %Y 2> /dev/null | sort -n | tail -n 1)
	[ -n "$newest" ] && [ "$newest" -le "$(stat -c %Y "$deb")" ] && echo "$deb"
}

test_fleet() {
	local i t0 hosts want="kf1 kf2 kf3 " out pid
	preconditions || return
	[ -n "$FLEET_QUERY" ] || { fail "docs/fleet.md shows no fleet query (a promql block under ## The fleet query)"; return; }
	t0=$SECONDS
	fleet_prepare || return
	echo "# fleet: base tree ready in $((SECONDS - t0)) s ($FLEET_BASE)"
	# The package of this tree: make deb's, unless build/deb holds one no
	# tracked file is newer than (t_deb.sh built it earlier in make check;
	# a build takes a minute or more on a loaded machine).  FLEET_DEB=FILE:
	# that package instead, for runs of this file alone.
	out=${FLEET_DEB:-$(built_deb)}
	[ -n "$out" ] || out=$(make -s -C "$ROOT" deb 2> "$TMP/deb.err" | tail -n 1)
	if [ ! -f "$out" ]; then
		fail "make deb: $(tail -n 5 "$TMP/deb.err")"
		return
	fi
	cp "$out" "$TMP/kashim.deb"
	echo "# fleet: package $out ready at $((SECONDS - t0)) s"

	for i in $(seq "$FLEET_N"); do fleet_host "$i" && fleet_boot "$i"; done
	if ! wait_for 120 all_hosts hosts_ready; then
		for i in $(seq "$FLEET_N"); do hosts_ready "$i" || break; done
		fail "the scene did not get ready: host kf$i is not running with sshd, node_exporter and the legacy connection: $(fleet_in "$i" systemctl --failed --no-legend 2>&1 | tr '\n' ';') $(tail -n 3 "$TMP/bg.${HOSTPID[i]}.log" | tr '\n' ';')"
		return
	fi
	ok "$FLEET_N hosts running, each with sshd, node_exporter and a legacy service whose connection has no keepalive (kernel: $(legacy_state 1 | grep -o 'keepalive=[0-9]*' | head -n 1))"
	for i in $(seq "$FLEET_N"); do
		"$PY" "$HELPERS/fleetq.py" snap "/proc/$(fleet_pid1 "$i")/root" "$TMP/h$i/upper" > "$TMP/snap$i.before"
	done
	echo "# fleet: hosts up at $((SECONDS - t0)) s"

	start_monitoring || return
	if ! wait_for 120 targets_up; then
		fail "the scene did not get ready: Prometheus does not scrape the $FLEET_N node_exporters: $(q 'up' 2>&1 | tr '\n' ';')"
		return
	fi
	write_ansible

	# 1. the audit alone, then the alert for the uncovered services
	if playbook audit -e '{"kashim_dropin_services": []}'; then
		ok "playbook with the audit alone: $(recap audit) in $PLAY_S s"
	else
		fail "playbook with the audit alone: $(recap audit) $(grep -E 'fatal|FAILED|ERROR' "$TMP/audit.log" | head -n 3)"
		return
	fi
	if wait_for 120 alerts_are firing "$want"; then
		ok "KashimUncoveredConnections reached the receiver for legacy.service on $(alerts_at firing)"
	else
		fail "no firing KashimUncoveredConnections for legacy.service of every host at the receiver within 120 s: got '$(alerts_at firing)'; fleet query: $(q "$FLEET_QUERY" | tr '\n' ';')"
		return
	fi
	hosts=$(hosts_in q "$FLEET_QUERY")
	if [ "$hosts" = "kf1 legacy.service;kf2 legacy.service;kf3 legacy.service;" ]; then
		ok "the fleet query before the rollout: $hosts"
	else
		fail "the fleet query before the rollout: '$hosts'"
	fi
	echo "# fleet: alert fired at $((SECONDS - t0)) s"

	# 2. the rollout
	if playbook rollout; then
		ok "rollout (a drop-in for legacy.service): $(recap rollout) in $PLAY_S s"
		echo "# fleet: rolled out at $((SECONDS - t0)) s"
	else
		fail "rollout: $(recap rollout) $(grep -E 'fatal|FAILED|ERROR' "$TMP/rollout.log" | head -n 3)"
		return
	fi
	if wait_for 60 all_hosts legacy_covered; then
		ok "the restarted legacy services' connections have kashim's keepalive (kernel: $(legacy_state 2 | grep -o 'keepalive=1.*' | head -n 1))"
	else
		fail "legacy.service not covered after the rollout: $(for i in 1 2 3; do legacy_state "$i"; done | tr '\n' ';')"
	fi
	fresh_and_covered() {
		[ -z "$(q "$FLEET_QUERY")" ] &&
			[ "$(q 'count(sum by (instance) (kashim_audit_connections_keepalive{unit="legacy.service"}) == 2)' | awk '{ print $3 }')" = "$FLEET_N" ]
	}
	if wait_for 60 fresh_and_covered; then
		ok "the fleet query shows no uncovered connection, and every host's audit sees legacy.service's 2 connections with keepalive"
	else
		fail "after the rollout the fleet query says: $(q "$FLEET_QUERY" | tr '\n' ';')"
	fi
	if wait_for 120 alerts_are resolved "$want"; then
		ok "the resolved notification reached the receiver for $(alerts_at resolved)"
	else
		fail "no resolved notification for every host within 120 s: got '$(alerts_at resolved)'"
	fi
	echo "# fleet: resolved at $((SECONDS - t0)) s"

	# 3. a dead peer on kf2: its network namespace's lo blackholed
	local abort1 abort2 abort3 ka2
	for i in $(seq "$FLEET_N"); do NETNS[i]=$(netns_of "$i"); done
	if ! wait_for 30 all_hosts counter_above abort_on_timeout; then
		fail "no kashim_audit_tcp_abort_on_timeout_total for the legacy services' network namespaces (${NETNS[*]}) in Prometheus: $(q 'kashim_audit_tcp_abort_on_timeout_total' | tr '\n' ';')"
		return
	fi
	abort1=$(counter abort_on_timeout 1) abort2=$(counter abort_on_timeout 2) abort3=$(counter abort_on_timeout 3)
	ka2=$(counter keepalive_probes 2)
	pid=$(fleet_unit_pid 2 legacy.service)
	nsenter -t "$pid" -n tc qdisc add dev lo root blackhole || { fail "tc blackhole in kf2's legacy.service"; return; }
	if wait_for 60 counter_above abort_on_timeout 2 $((abort2 + 2)); then
		ok "kf2: TCPAbortOnTimeout $abort2 -> $(counter abort_on_timeout 2) (both ends of the dead connection), TCPKeepAlive $ka2 -> $(counter keepalive_probes 2), through Prometheus"
	else
		fail "kf2's abort counter did not move by 2 within 60 s: $abort2 -> $(counter abort_on_timeout 2)"
	fi
	if [ "$(counter abort_on_timeout 1)" = "$abort1" ] && [ "$(counter abort_on_timeout 3)" = "$abort3" ]; then
		ok "kf1 and kf3: TCPAbortOnTimeout unchanged ($abort1, $abort3), their probes answered (TCPKeepAlive $(counter keepalive_probes 1), $(counter keepalive_probes 3))"
	else
		fail "another host's abort counter moved: kf1 $abort1 -> $(counter abort_on_timeout 1), kf3 $abort3 -> $(counter abort_on_timeout 3)"
	fi
	if fleet_in 2 journalctl -u legacy.service --no-pager -o cat 2> /dev/null | grep -q 'connection lost: \[Errno 110\]'; then
		ok "kf2's legacy service was told: Connection timed out"
	else
		fail "kf2's legacy service did not see its connection time out"
	fi

	# 4. idempotence, --check --diff, validation
	if playbook again && [ "$(recap again)" = "kf1 changed=0 failed=0 unreachable=0;kf2 changed=0 failed=0 unreachable=0;kf3 changed=0 failed=0 unreachable=0;" ]; then
		ok "the same playbook again: $(recap again) in $PLAY_S s"
		echo "# fleet: second run done at $((SECONDS - t0)) s"
	else
		fail "the second run changed something: $(recap again) $(grep -E '^changed:' "$TMP/again.log" | head -n 5)"
	fi
	# a look (--check --diff) on kf1 and a bad value on kf3, at once: neither
	# may change its host
	playbook check --limit kf1 --check --diff -e '{"kashim_config": {"idle": "3s", "interval": "1s", "count": 2}}' &
	local look=$!
	playbook bad --limit kf3 -e '{"kashim_config": {"idle": "2 seconds"}}' &
	wait "$look" $!
	if grep -q '^-idle = 2s' "$TMP/check.log" && grep -q '^+idle = 3s' "$TMP/check.log" &&
		[ "$(fleet_in 1 grep idle /etc/kashim.conf)" = "idle = 2s" ]; then
		ok "--check --diff shows /etc/kashim.conf's change (-idle = 2s, +idle = 3s) and makes none: $(recap check)"
	else
		fail "--check --diff: $(grep -E '^[-+]idle' "$TMP/check.log" | tr '\n' ';') $(recap check) / $(fleet_in 1 grep idle /etc/kashim.conf)"
	fi
	if grep -q 'kashim: .*idle' "$TMP/bad.log" && grep -q 'failed=1' <<< "$(recap bad)" &&
		[ "$(fleet_in 3 grep idle /etc/kashim.conf)" = "idle = 2s" ]; then
		ok "a bad value is refused by kashim check before it is put in place: $(grep -o 'idle=[^ ]* [^ ]* ignored ([^)]*)' "$TMP/bad.log" | head -n 1)"
	else
		fail "the bad value was not refused, or it reached the host: $(recap bad) $(grep -E 'fatal|kashim' "$TMP/bad.log" | head -n 2) / $(fleet_in 3 grep idle /etc/kashim.conf)"
	fi

	# 5. absent
	if playbook absent -e kashim_state=absent; then
		ok "kashim_state=absent: $(recap absent) in $PLAY_S s"
		echo "# fleet: absent done at $((SECONDS - t0)) s"
	else
		fail "kashim_state=absent: $(recap absent) $(grep -E 'fatal|FAILED|ERROR' "$TMP/absent.log" | head -n 3)"
	fi
	if wait_for 60 all_hosts legacy_uncovered; then
		ok "legacy.service restarted without kashim on every host (kernel: $(legacy_state 1 | grep -o 'keepalive=[0-9]*' | head -n 1))"
	else
		fail "legacy.service still covered after absent: $(for i in 1 2 3; do legacy_state "$i"; done | tr '\n' ';')"
	fi
	for i in $(seq "$FLEET_N"); do
		"$PY" "$HELPERS/fleetq.py" compare "/proc/$(fleet_pid1 "$i")/root" "$TMP/h$i/upper" "$TMP/snap$i.before" \
			"$FLEET_BASE" > "$TMP/compare$i"
		if [ "$(wc -l < "$TMP/compare$i")" = 1 ] && [ "$(fleet_in "$i" dpkg-query -W -f '${db:Status-Status}' kashim 2> /dev/null)" != installed ]; then
			ok "kf$i as it was: kashim not installed, every file as before the first run ($(cat "$TMP/compare$i"))"
		else
			fail "kf$i differs from before the first run: $(head -n 6 "$TMP/compare$i" | tr '\n' ';')"
		fi
	done
	echo "# fleet: the whole test in $((SECONDS - t0)) s"
}

run_tests
