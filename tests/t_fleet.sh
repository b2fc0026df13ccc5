#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run: timeout 1800 (the first run on a machine builds the hosts' base with debootstrap, 3-6 min; the playbooks took 16 min under a load average of 12 to 16)
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
#      YAML's booleans reach /etc/kashim.conf as kashim's on and off, and
#      kashim: off, which kashim attach refuses, is refused (on the third);
#   4b. a service taken out of kashim_dropin_services loses its drop-in and
#      runs without kashim (kf1); one given to kashim_cgroup_services is
#      covered by the cgroup mode, also after its own restart (kf3); a
#      service's own cgroup in kashim_attach_slices is refused before the
#      host changes (kf2);
#   5. kashim_state=absent, with no service listed, leaves every host's
#      files as they were before 1, the legacy service running without
#      kashim again (no drop-in, no loader error, no LD_PRELOAD).
# The .deb is kept in /tmp on kf1 and in /root on kf2 (kashim_deb_dest):
# those directories keep their mode, owner and files throughout.
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

# The test's own binaries: tests/sockpeek reads the services' sockets (a
# plain make builds only the library and the command).
build_test_bins() {
	if ! make -s -C "$ROOT" tests/sockpeek > "$TMP/make.log" 2>&1 || [ ! -x "$PEEK" ]; then
		fail "tests/sockpeek is missing and make tests/sockpeek failed: $(tail -n 3 "$TMP/make.log" | tr '\n' ';')"
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
# legacy_preload I: the LD_PRELOAD of host I's legacy service ("" if none)
legacy_preload() { tr '\0' '\n' < "/proc/$(fleet_unit_pid "$1" legacy.service)/environ" | sed -n 's/^LD_PRELOAD=//p'; }
# legacy_clean I: host I's legacy service runs without kashim: no
# keepalive, no LD_PRELOAD, and no loader error in its journal
legacy_clean() {
	legacy_uncovered "$1" && [ -z "$(legacy_preload "$1")" ] &&
		! fleet_in "$1" journalctl -u legacy.service --no-pager -o cat 2> /dev/null | grep -q 'ld\.so'
}
# legacy_restarted I PID: host I's legacy service runs with another pid
legacy_restarted() { local p; p=$(fleet_unit_pid "$1" legacy.service) && [ "$p" != "$2" ]; }

# place I DIR: DIR in host I and what is in it, one line each: path, mode,
# owner, and a file's size (the .deb's directory: the role must leave it
# as it was; a directory's own size on tmpfs grows with its entries).
# systemd's PrivateTmp= directories come and go with services (the audit's
# every 2 s): not the role's.
place() {
	fleet_in "$1" find "$2" -maxdepth 1 ! -name 'systemd-private-*' \
		\( -type d -printf '%p %M %u:%g\n' -o -printf '%p %M %u:%g %s\n' \) | sort
}

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
	remote_tmp = /run/.ansible-kashim-test
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
		# where an operator may keep the .deb: a directory the role did not make
		echo "kf1 ansible_host=127.0.0.1 ansible_port=$((PORTS + 1)) kashim_deb_dest=/tmp/kashim.deb"
		echo "kf2 ansible_host=127.0.0.1 ansible_port=$((PORTS + 2)) kashim_deb_dest=/root/kashim.deb"
		for i in $(seq 3 "$FLEET_N"); do echo "kf$i ansible_host=127.0.0.1 ansible_port=$((PORTS + i))"; done
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

# YAML's booleans in kashim_config, as an operator writes them (off, no,
# false, true: Python's False and True to Ansible), on kf2: /etc/kashim.conf
# gets kashim's on and off; then kashim: off, which kashim attach refuses
# (kashim-attach@ would fail after the file was replaced), is refused by
# the file's check before it is put in place.
yaml_booleans() {
	cat > "$TMP/bools.yml" <<-YAML
	kashim_config: {idle: 2s, interval: 1s, count: 2, debug: no, kashim: true}
	kashim_program_config: {python3: {debug: false}}
	YAML
	printf 'kashim_config: {idle: 2s, interval: 1s, count: 2, kashim: off}\n' > "$TMP/off.yml"
	playbook bools --limit kf2 -e @"$TMP/bools.yml"
	fleet_in 2 cat /etc/kashim.conf > "$TMP/bools.conf" 2>&1
	playbook off --limit kf2 -e @"$TMP/off.yml"
}
yaml_booleans_seen() {
	if grep -qx 'debug = off' "$TMP/bools.conf" && grep -qx 'kashim = on' "$TMP/bools.conf" &&
		sed -n '/^\[program python3\]/,$p' "$TMP/bools.conf" | grep -qx 'debug = off' &&
		grep -q 'failed=0' <<< "$(recap bools)"; then
		ok "YAML no, false, true in kashim_config reach /etc/kashim.conf as debug = off, [program python3] debug = off, kashim = on: $(recap bools)"
	else
		fail "YAML booleans: $(recap bools) $(grep -E '^(debug|kashim) ' "$TMP/bools.conf" | tr '\n' ';') $(grep -E 'fatal' "$TMP/bools.log" | head -n 2)"
	fi
	if grep -q 'kashim: .*turns kashim off (kashim = off): kashim attach refuses it' "$TMP/off.log" &&
		grep -q 'failed=1' <<< "$(recap off)" && fleet_in 2 grep -qx 'kashim = on' /etc/kashim.conf; then
		ok "YAML kashim: off is refused by the file's check before it is put in place: $(recap off)"
	else
		fail "YAML kashim: off: $(recap off) $(grep -E 'fatal|kashim:' "$TMP/off.log" | head -n 2) / $(fleet_in 2 grep '^kashim' /etc/kashim.conf)"
	fi
}

# taken_out PID: kf1's legacy service, taken out of kashim_dropin_services,
# lost its drop-in and was restarted (PID was its process): no kashim.
taken_out() {
	if fleet_in 1 test -e /etc/systemd/system/legacy.service.d/kashim.conf; then
		fail "kf1: legacy.service taken out of kashim_dropin_services keeps its drop-in: $(recap out)"
	elif wait_for 60 legacy_restarted 1 "$1" && wait_for 60 legacy_clean 1; then
		ok "kf1: legacy.service taken out of kashim_dropin_services: drop-in removed, restarted without LD_PRELOAD or keepalive: $(recap out)"
	else
		fail "kf1: legacy.service after it was taken out: $(recap out) LD_PRELOAD='$(legacy_preload 1)' $(legacy_state 1)"
	fi
}

# cgroup_route PID: kf3's legacy service moved to kashim_cgroup_services:
# covered by the cgroup mode (no LD_PRELOAD), and again after a restart of
# its own, which gives it a new cgroup.
cgroup_route() {
	local pid
	if wait_for 60 legacy_restarted 3 "$1" && wait_for 60 legacy_covered 3 && [ -z "$(legacy_preload 3)" ]; then
		ok "kf3: legacy.service in kashim_cgroup_services: covered with no LD_PRELOAD (kernel: $(legacy_state 3 | grep -o 'keepalive=1.*' | head -n 1)): $(recap cgroup)"
	else
		fail "kf3: legacy.service in kashim_cgroup_services: $(recap cgroup) LD_PRELOAD='$(legacy_preload 3)' $(legacy_state 3) $(grep -E 'fatal' "$TMP/cgroup.log" | head -n 2) $(fleet_in 3 journalctl -u legacy.service --no-pager -o cat 2> /dev/null | grep kashim | tail -n 2)"
		return
	fi
	pid=$(fleet_unit_pid 3 legacy.service)
	fleet_in 3 systemctl restart legacy.service
	if wait_for 60 legacy_restarted 3 "$pid" && wait_for 60 legacy_covered 3; then
		ok "kf3: after systemctl restart legacy (a new cgroup) still covered: attached at each start"
	else
		fail "kf3: legacy.service after its restart: $(legacy_state 3)"
	fi
}

# places_after WHEN I DIR J DIR: host I's DIR and host J's DIR, where the
# .deb is kept, as before the role plus the .deb (a file of root's, 0644),
# or exactly as before when the run was absent: mode, owner, every file.
places_after() {
	local when=$1 i dir deb
	shift
	while [ $# -gt 0 ]; do
		i=$1 dir=$2
		shift 2
		place "$i" "$dir" > "$TMP/place$i.now"
		cp "$TMP/place$i.before" "$TMP/place$i.want"
		if [ "$when" != absent ]; then
			deb=$(grep "^$dir/kashim.deb " "$TMP/place$i.now")
			case $deb in "$dir/kashim.deb -rw-r--r-- root:root "*) echo "$deb" >> "$TMP/place$i.want" ;; esac
			sort -o "$TMP/place$i.want" "$TMP/place$i.want"
		fi
		if [ "$when" != absent ] && [ -z "$deb" ]; then
			fail "kf$i: no $dir/kashim.deb after $when: $(tr '\n' ';' < "$TMP/place$i.now")"
		elif cmp -s "$TMP/place$i.want" "$TMP/place$i.now"; then
			ok "kf$i's $dir after $when: $(head -n 1 "$TMP/place$i.now" | cut -d' ' -f2,3) as before, its $(($(wc -l < "$TMP/place$i.before") - 1)) entries as before${deb:+, and the .deb}"
		else
			fail "kf$i's $dir after $when differs from before (- before, + now): $(diff "$TMP/place$i.want" "$TMP/place$i.now" | sed -n 's/^</-/p; s/^>/+/p' | tr '\n' ';')"
		fi
	done
}

test_fleet() {
	local i t0 hosts want="kf1 kf2 kf3 " out pid
	preconditions || return
	build_test_bins || return
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
	# the .deb's places (kashim_deb_dest) as they are before the role:
	# /tmp (a tmpfs of nspawn's: not in the snapshots) with a user's file
	fleet_in 1 sh -c 'echo "a user'"'"'s file" > /tmp/notes.txt && chown nobody: /tmp/notes.txt'
	place 1 /tmp > "$TMP/place1.before"
	place 2 /root > "$TMP/place2.before"
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
	places_after "the first run" 1 /tmp 2 /root
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
	local bad=$!
	yaml_booleans &
	wait "$look" "$bad" $!
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

	yaml_booleans_seen

	# 4b. the lists change (three hosts at once, each its own case)
	local before1 before3
	before1=$(fleet_unit_pid 1 legacy.service) before3=$(fleet_unit_pid 3 legacy.service)
	playbook out --limit kf1 -e '{"kashim_dropin_services": []}' &
	local out=$!
	playbook cgroup --limit kf3 -e '{"kashim_dropin_services": [], "kashim_cgroup_services": ["legacy"]}' &
	local cg=$!
	playbook slice --limit kf2 -e '{"kashim_attach_slices": ["system.slice", "system.slice/legacy.service"]}'
	wait "$out" "$cg"
	taken_out "$before1"
	cgroup_route "$before3"
	if grep -q 'kashim_attach_slices: system.slice/legacy.service: a unit.s or a container.s own cgroup, which systemd .* Put the service in kashim_cgroup_services' "$TMP/slice.log" &&
		[ "$(recap slice)" = "kf2 changed=0 failed=1 unreachable=0;" ] && fleet_in 2 grep -qx 'idle = 2s' /etc/kashim.conf; then
		ok "a service's own cgroup in kashim_attach_slices is refused before the host changes: $(recap slice) $(grep -o 'kashim_attach_slices: system.slice/legacy.service: [^,]*' "$TMP/slice.log" | head -n 1)"
	else
		fail "kashim_attach_slices with system.slice/legacy.service: $(recap slice) $(grep -E 'fatal|msg' "$TMP/slice.log" | head -n 3)"
	fi

	# 5. absent, no service listed: the role finds the drop-ins it wrote
	if playbook absent -e kashim_state=absent -e '{"kashim_dropin_services": [], "kashim_cgroup_services": []}'; then
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
	# and at its next start: no drop-in left to preload a purged library
	for i in $(seq "$FLEET_N"); do
		pid=$(fleet_unit_pid "$i" legacy.service)
		fleet_in "$i" systemctl restart legacy.service
		if wait_for 60 legacy_restarted "$i" "$pid" && wait_for 60 legacy_clean "$i"; then
			ok "kf$i: legacy.service restarted after absent: no LD_PRELOAD, no loader error, no keepalive"
		else
			fail "kf$i: legacy.service after absent and a restart: LD_PRELOAD='$(legacy_preload "$i")' $(legacy_state "$i") $(fleet_in "$i" journalctl -u legacy.service --no-pager -o cat 2> /dev/null | grep 'ld\.so' | tail -n 1) $(fleet_in "$i" ls /etc/systemd/system/legacy.service.d 2>&1)"
		fi
	done
	places_after absent 1 /tmp 2 /root
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

# A package archive's host written into the code (issue 29: fleetbase.sh's
# debootstrap mirror was Debian's own archive host, which a machine behind
# its own mirror cannot reach): the tests take the archive from this
# machine's apt sources (tests/helpers/aptmirror.sh).  The package's metadata (debian/)
# and the prose (docs/, *.md) may name one.  An archive is a known
# archive host, or a URL whose path is a distribution's archive root.
ARCHIVE_RE='(^|[^a-z0-9.-])(([a-z0-9-]+\.)*(deb|ftp|httpredir|security|archive|snapshot|cdn-fastly\.deb)\.debian\.org|([a-z0-9-]+\.)*(archive|security|ports|old-releases)\.ubuntu\.com|deb\.devuan\.org|dl-cdn\.alpinelinux\.org|mirrors\.kernel\.org)|https?://[^/[:space:]"'"'"']+/(debian|debian-security|ubuntu|devuan)/?([[:space:]"'"'"'}]|$)'

# archive_hosts DIR: the lines of the files below DIR (NUL-separated
# paths, relative to DIR, on stdin) that name an archive
archive_hosts() { (cd "$1" && xargs -0 -r grep -IHnE "$ARCHIVE_RE" --) 2> /dev/null; }

code_files() {
	if git -C "$ROOT" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
		git -C "$ROOT" ls-files -z
	else
		(cd "$ROOT" && find . -path ./.git -prune -o -path ./build -prune -o -type f -printf '%P\0')
	fi | grep -zvE '^(debian|docs)/|\.md$'
}

test_no_archive_host_in_code() {
	local found
	# the check itself first: the line fleetbase.sh had (pieced together
	# here, so that this file does not name it) is found
	mkdir -p "$TMP/old/tests/helpers"
	printf 'dir=${1:-/var/cache/kashim-fleet/bookworm}\nmirror=${FLEET_MIRROR:-http://deb.%s.org/%s}\n' debian debian \
		> "$TMP/old/tests/helpers/fleetbase.sh"
	printf 'deb http://mirror.example.net/%s bookworm main\n' debian > "$TMP/old/sources"
	found=$(printf 'tests/helpers/fleetbase.sh\0sources\0' | archive_hosts "$TMP/old" | cut -d: -f1,2 | tr '\n' ' ')
	if [ "$found" != "tests/helpers/fleetbase.sh:2 sources:1 " ]; then
		fail "the archive check does not find the old fleetbase.sh's mirror line and a mirror URL: '$found'"
		return
	fi
	found=$(code_files | archive_hosts "$ROOT")
	if [ -z "$found" ]; then
		ok "no package archive named in the code ($(code_files | tr -cd '\0' | wc -c) files; the old fleetbase.sh's line is found)"
	else
		fail "a package archive named in the code (take it from the machine's apt sources, tests/helpers/aptmirror.sh): $(head -n 5 <<< "$found" | tr '\n' ';')"
	fi
}

run_tests
