# SPDX-License-Identifier: MIT
# The kashim command: every subcommand and flag, the refusals and the exit
# statuses, from the build tree and from a `make install` into a DESTDIR.
. "$(dirname "$0")/lib.sh"

K=$ROOT/kashim

test_help_and_version() {
	expect_status 0 "--version" "$K" --version
	expect_text "$TMP/out" "version line" '^kashim [0-9]+\.[0-9]+\.[0-9]+$'
	expect_status 0 "--help" "$K" --help
	expect_text "$TMP/out" "help lists every command" 'inspect .*PID'
	local c
	for c in run check inspect doctor dropin; do
		expect_status 0 "$c --help" "$K" "$c" --help
		expect_text "$TMP/out" "$c --help is a usage text on stdout" "^usage: kashim $c"
	done
	expect_status 2 "no command" "$K"
	expect_status 2 "an unknown command" "$K" frobnicate
	expect_text "$TMP/err" "says which command" 'unknown command frobnicate'
	expect_status 2 "an unknown option" "$K" run --idel 5 true
}

test_check_environment() {
	expect_status 0 "check: a good environment" env -i KASHIM_IDLE=5 KASHIM_INTERVAL=6 KASHIM_COUNT=3 "$K" check
	expect_text "$TMP/out" "effective idle" '^KASHIM_IDLE +5s$'
	expect_text "$TMP/out" "auto user timeout" '^KASHIM_USER_TIMEOUT +23000ms \(auto'
	expect_text "$TMP/out" "worst case when idle" 'idle connection: +23 s \(5 s idle \+ 3 probes x 6 s\)'
	expect_text "$TMP/out" "worst case with data in flight" 'data in flight: +23 s'
	expect_status 1 "check: a bad value" env -i KASHIM_IDLE=10x "$K" check
	if [ "$(cat "$TMP/err")" = 'kashim: KASHIM_IDLE="10x" ignored (unexpected characters after the number); accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s
kashim check: 1 problem' ]; then
		ok "check gives the library's own message, then the count"
	else
		fail "check stderr: $(cat "$TMP/err")"
	fi
	expect_status 1 "check: an unknown variable" env -i KASHIM_IDEL=5 "$K" check
	expect_text "$TMP/err" "names the typo" 'KASHIM_IDEL is not a kashim variable'
	expect_status 0 "check: user timeout off" env -i KASHIM_USER_TIMEOUT=off "$K" check
	expect_text "$TMP/out" "data in flight falls back to the kernel" 'about 15 minutes'
	expect_status 0 "check: KASHIM=off" env -i KASHIM=off "$K" check
	expect_text "$TMP/out" "says kashim is off" '^KASHIM +off'
}

test_check_env_file() {
	printf '# a comment\n\nKASHIM_IDLE="40s"\nKASHIM_COUNT=4\nOTHER=x\n' > "$TMP/good.env"
	expect_status 0 "--env-file: good, with a quoted value" "$K" check --env-file "$TMP/good.env"
	expect_text "$TMP/out" "reads the file's values" '^KASHIM_IDLE +40s$'
	printf 'KASHIM_IDLE=40s\nthis is not a setting\nKASHIM_COUNT=0\n' > "$TMP/bad.env"
	expect_status 1 "--env-file: a malformed line and a bad value" "$K" check --env-file "$TMP/bad.env"
	expect_text "$TMP/err" "names file and line" "bad.env:2: not a KEY=VALUE line"
	expect_text "$TMP/err" "and the bad value" 'KASHIM_COUNT="0" ignored \(out of range\)'
	expect_text "$TMP/err" "counts both" 'kashim check: 2 problems'
	expect_status 1 "--env-file: unreadable" "$K" check --env-file "$TMP/none.env"
	expect_text "$TMP/err" "says why" "cannot read .*none.env: No such file"
}

test_check_config_file_per_program() {
	printf 'idle = 40s\nskip = 127.0.0.0/8\n[program java]\nidle = 10s\nmode = force\n' > "$TMP/k.conf"
	expect_status 0 "check --program java with KASHIM_CONFIG" env -i KASHIM_CONFIG="$TMP/k.conf" "$K" check --program java
	expect_text "$TMP/out" "the section's idle" '^KASHIM_IDLE +10s$'
	expect_text "$TMP/out" "the section's mode" '^KASHIM_MODE +force$'
	expect_text "$TMP/out" "the global skip rule" '^KASHIM_SKIP +127\.0\.0\.0/8$'
	expect_status 0 "check --program curl" env -i KASHIM_CONFIG="$TMP/k.conf" "$K" check --program curl
	expect_text "$TMP/out" "the global idle" '^KASHIM_IDLE +40s$'
	expect_status 0 "check with KASHIM_PROGRAMS" env -i KASHIM_PROGRAMS=java "$K" check --program python3
	expect_text "$TMP/out" "python3 is not covered" '^KASHIM +off: kashim does nothing for this program'
	printf 'idle = 40s\n[program java]\nidel = 3\n' > "$TMP/bad.conf"
	expect_status 1 "check: a bad line in a section" env -i KASHIM_CONFIG="$TMP/bad.conf" "$K" check
	expect_text "$TMP/err" "file and line" "bad.conf:3: unknown setting \"idel\" \(did you mean idle\?\)"
}

# check's second part: what the cgroup mode (kashim attach) makes of the
# same configuration, line for line.
test_check_cgroup_mode() {
	cat > "$TMP/k.conf" <<'CONF'
idle = 40s
count = 4
scope = server
skip = 127.0.0.0/8, [fd00::/8]:443
debug = on
programs = java
[program java]
idle = 10s
CONF
	expect_status 0 "check --config FILE --program java" env -i "$K" check --config "$TMP/k.conf" --program java
	expect_text "$TMP/out" "the preload: java's section" '^KASHIM_IDLE +10s$'
	sed -n '/^cgroup mode/,/^$/p' "$TMP/out" > "$TMP/cg"
	cat > "$TMP/want" <<WANT
cgroup mode (kashim attach, the same settings given as its options and --config):
idle=40s interval=15s count=4 user_timeout=100000ms mode=respect scope=server
  skip 127.0.0.0/8
  skip [fd00::/8]:443
kashim: $TMP/k.conf:8: idle in [program java] not applied (the cgroup mode does not know which program a connection belongs to; the other settings are applied)
kashim: $TMP/k.conf:6: programs not applied (the cgroup mode does not know which program a connection belongs to; the other settings are applied)
kashim: debug not applied (the cgroup mode writes no debug lines: kashim status shows what it did); the other settings are applied

WANT
	if cmp -s "$TMP/want" "$TMP/cg"; then
		ok "the cgroup mode: global settings and rules, one line per setting only the preload applies"
	else
		fail "check's cgroup part: $(diff "$TMP/want" "$TMP/cg")"
	fi
	expect_status 0 "check: a variable only the preload applies" env -i KASHIM_SKIP_PROGRAMS=ssh KASHIM_ONLY=:5432 "$K" check --program java
	if grep -qx 'kashim: KASHIM_SKIP_PROGRAMS not applied (the cgroup mode does not know which program a connection belongs to; the other settings are applied)' "$TMP/out" &&
	   grep -qx '  only :5432' "$TMP/out"; then
		ok "KASHIM_SKIP_PROGRAMS named once, the ONLY rule listed"
	else
		fail "check: $(sed -n '/^cgroup mode/,$p' "$TMP/out")"
	fi
	expect_status 1 "check: a bad value" env -i KASHIM_COUNT=0 "$K" check
	if grep -qx 'refused: kashim attach attaches nothing while a setting is bad (the preload uses the default instead); correct the problem above' "$TMP/out" &&
	   grep -qx 'KASHIM_COUNT         9' "$TMP/out"; then
		ok "the preload takes the default, attach refuses"
	else
		fail "check: $(cat "$TMP/out")"
	fi
	printf 'kashim = off\n' > "$TMP/off.conf"
	expect_status 1 "check: a file that turns kashim off" env -i "$K" check --config "$TMP/off.conf"
	expect_text "$TMP/out" "attach refuses it" '^off: kashim attach refuses a configuration that turns kashim off$'
	expect_text "$TMP/err" "one line saying so" "^kashim: $(re_quote "$TMP/off.conf") turns kashim off \(kashim = off\): kashim attach refuses it"
	printf 'KASHIM_CONFIG=%s\nKASHIM_IDLE=50\n' "$TMP/k.conf" > "$TMP/k.env"
	expect_status 0 "check --env-file naming the file" "$K" check --env-file "$TMP/k.env"
	expect_text "$TMP/out" "the variable wins over the file in both modes" '^idle=50s interval=15s count=4 user_timeout=110000ms mode=respect scope=server$'
	expect_status 2 "check --config without a value" "$K" check --config
	expect_text "$TMP/err" "usage" '^usage: kashim check \[--env-file FILE\] \[--config FILE\] \[--program NAME\]$'
}

# attach_takes FILE: kashim attach --config FILE got past the file to the
# cgroup (a path that does not exist: nothing is attached either way).
attach_takes() {
	env -i "$K" attach --config "$1" "$TMP/no-such-cgroup" > /dev/null 2> "$TMP/attach.err"
	grep -qF "$TMP/no-such-cgroup" "$TMP/attach.err"
}

# One verdict for both modes (issue 29): check --config FILE (the Ansible
# role's validate:) passes exactly the files attach --config takes, so a
# file put in place for kashim-attach@ is never refused by it afterwards.
# WANT: refused or taken, by both.
test_check_and_attach_agree() {
	local f want got_check got_attach
	mkdir "$TMP/dir.conf"
	printf 'kashim = off\n' > "$TMP/off.conf"
	printf 'kashim = False\n' > "$TMP/False.conf"
	printf 'kashim = no\n' > "$TMP/no.conf"
	printf 'kashim = 0\n' > "$TMP/zero.conf"
	printf 'kashim = True\nidle = 30s\n' > "$TMP/True.conf"
	printf 'kashim = maybe\n' > "$TMP/maybe.conf"
	printf 'idle = 10x\n' > "$TMP/bad.conf"
	printf 'kashim = off\nidle = 10x\n' > "$TMP/offbad.conf"
	printf 'idle = 30s\n[program java]\ncount = 0\n' > "$TMP/section.conf"
	printf 'idle = 30s\n[program java]\nkashim = off\n' > "$TMP/sectionoff.conf"
	printf 'programs = java\nidle = 30s\n' > "$TMP/programs.conf"
	printf 'debug = yes\nidle = 30s\n' > "$TMP/debug.conf"
	printf '\377\376 = 1\n' > "$TMP/binary.conf"
	for f in off:refused False:refused no:refused zero:refused True:taken maybe:refused bad:refused \
		offbad:refused section:refused sectionoff:taken programs:taken debug:taken binary:refused \
		dir:refused missing:refused; do
		want=${f#*:} f=$TMP/${f%%:*}.conf
		if env -i "$K" check --config "$f" > "$TMP/out" 2> "$TMP/err"; then got_check=taken; else got_check=refused; fi
		if attach_takes "$f"; then got_attach=taken; else got_attach=refused; fi
		if [ "$got_check" = "$want" ] && [ "$got_attach" = "$want" ]; then
			ok "${f##*/}: $want by check --config and by attach --config"
		else
			fail "${f##*/}: check --config: $got_check, attach --config: $got_attach, want both $want; check: $(tr '\n' ';' < "$TMP/err") attach: $(tr '\n' ';' < "$TMP/attach.err")"
		fi
	done
	# attach reads no KASHIM_* variable: one that switches kashim off here
	# does not hide the file from the check
	expect_status 1 "KASHIM=off check --config a file with a bad value" env -i KASHIM=off "$K" check --config "$TMP/bad.conf"
	expect_text "$TMP/err" "the file's line" 'bad\.conf:1: idle="10x" ignored'
	expect_status 0 "KASHIM=off check --config a good file" env -i KASHIM=off "$K" check --config "$TMP/True.conf"
	expect_text "$TMP/out" "the variable still wins for the preload" '^KASHIM +off: kashim does nothing'
}

# Every rule prints as text that parses back to it (issue 21: ":1-65535"
# printed as nothing, so dropin --cgroup wrote "--skip  self", which
# systemd reads as --skip self with no cgroup): dropin --cgroup's own
# output, given back to it, writes the same line.
rule_list_of() { sed -n "s/^ExecStartPre=.* --$1 \([^ ]*\) .*/\1/p" "$TMP/out"; }
test_rules_print_back() {
	local list printed
	expect_status 0 "dropin --cgroup --skip :1-65535" "$K" dropin --cgroup --skip :1-65535
	expect_text "$TMP/out" "the rule is written as it parses" '^ExecStartPre=.* --skip :1-65535 -- self$'
	for list in ':1-65535' '10.0.0.0/8,:1-65535' ':1,:65535,:1-2,:65534-65535' \
		'0.0.0.0/0,::/0,[::/0]:1-65535' '::ffff:10.0.0.0/104,[::ffff:127.0.0.1]:80,::ffff:1.2.3.4/95' \
		'[fd00::/8]:8000-8999,::1,1.2.3.4:5-6'; do
		"$K" dropin --cgroup --only "$list" --skip "$list" > "$TMP/out" 2> "$TMP/err"
		printed=$(rule_list_of only)
		cp "$TMP/out" "$TMP/first"
		if [ -z "$printed" ] || [ "$printed" != "$(rule_list_of skip)" ] ||
			! "$K" dropin --cgroup --only "$printed" --skip "$printed" > "$TMP/out" 2> "$TMP/err" ||
			! cmp -s "$TMP/first" "$TMP/out"; then
			fail "$list: printed as '$printed', which does not give the same line back: $(grep ExecStartPre "$TMP/first" "$TMP/out") $(cat "$TMP/err")"
		else
			ok "$list: printed as $printed, which gives the same line back"
		fi
	done
	expect_status 0 "check with KASHIM_SKIP=:1-65535" env -i KASHIM_SKIP=:1-65535 "$K" check
	expect_text "$TMP/out" "check lists the rule as it parses" '^  skip :1-65535$'
}

# One set of scope words everywhere (issue 21: attach --scope took both,
# the file's scope = both was a bad value).
test_scope_both_everywhere() {
	printf 'scope = both\n' > "$TMP/both.conf"
	expect_status 0 "check: scope = both in the file" env -i "$K" check --config "$TMP/both.conf"
	if [ -s "$TMP/err" ]; then fail "a message: $(cat "$TMP/err")"; else ok "no message"; fi
	expect_text "$TMP/out" "the cgroup mode takes it as all" '^idle=15s interval=15s count=9 user_timeout=150000ms mode=respect$'
	expect_status 0 "check: KASHIM_SCOPE=both" env -i KASHIM_SCOPE=both "$K" check
	expect_status 0 "dropin --cgroup --scope both" "$K" dropin --cgroup --scope both
	expect_text "$TMP/out" "written as all: no --scope" '^ExecStartPre=.* --mode respect -- self$'
}

# Every operand position takes "--" (issue 21): doctor, inspect and detach
# as run and attach do.
test_double_dash_before_operands() {
	expect_status 0 "doctor -- PROGRAM" "$K" doctor -- /bin/true
	expect_status 0 "inspect -- PID" "$K" inspect -- $$
	expect_text "$TMP/out" "inspect reads it" '^\(no TCP sockets\)$|ESTABLISHED|LISTEN'
	expect_status 2 "inspect -- without a PID" "$K" inspect --
	expect_status 1 "detach -- CGROUP: the operand, not a usage error" "$K" detach -- /nonexistent-kashim-t$$
	expect_text "$TMP/err" "names it" "^kashim detach: .*nonexistent-kashim-t$$"
}

test_run_sets_environment_and_execs() {
	expect_status 0 "run: LD_PRELOAD gets the build tree's library" env -u LD_PRELOAD "$K" run printenv LD_PRELOAD
	if [ "$(cat "$TMP/out")" = "$LIB" ]; then ok "LD_PRELOAD=$LIB"; else fail "LD_PRELOAD=$(cat "$TMP/out")"; fi
	expect_status 0 "run: keeps an existing LD_PRELOAD" env LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6 "$K" run printenv LD_PRELOAD
	if [ "$(cat "$TMP/out")" = "/lib/x86_64-linux-gnu/libm.so.6:$LIB" ]; then ok "appended once"; else fail "$(cat "$TMP/out")"; fi
	expect_status 0 "run: does not add the library twice" env LD_PRELOAD="$LIB" "$K" run printenv LD_PRELOAD
	if [ "$(cat "$TMP/out")" = "$LIB" ]; then ok "not duplicated"; else fail "$(cat "$TMP/out")"; fi
	expect_status 0 "run: options reach the program's sockets" "$K" run --idle 37 --interval=11 --count 4 --user-timeout 9s -- \
		"$PY" -c 'import socket; s = socket.socket(); T = socket.IPPROTO_TCP
print(*(s.getsockopt(T, o) for o in (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT, socket.TCP_USER_TIMEOUT)))'
	if [ "$(cat "$TMP/out")" = "37 11 4 9000" ] && [ ! -s "$TMP/err" ]; then
		ok "socket has 37 11 4 9000, nothing on stderr"
	else
		fail "socket has '$(cat "$TMP/out")', stderr '$(cat "$TMP/err")'"
	fi
	expect_status 0 "run --debug" "$K" run --debug "$PY" -c 'import socket; socket.socket()'
	expect_text "$TMP/err" "debug lines appear" '^kashim\[[0-9]+\]: fd [0-9]+ \(socket\): keepalive set'
	expect_status 7 "run: the program's exit status comes back" "$K" run sh -c 'exit 7'
	expect_status 2 "run: a bad option value starts nothing" "$K" run --count 500 touch "$TMP/ran"
	if [ -e "$TMP/ran" ]; then fail "the program ran"; else ok "the program did not run"; fi
	expect_text "$TMP/err" "says so" 'kashim run: nothing started'
	expect_status 127 "run: a program not found" "$K" run no-such-program-kashim
	printf 'not a program\n' > "$TMP/plain"
	chmod +x "$TMP/plain"
	expect_status 125 "run: refuses a file that is not a program" "$K" run "$TMP/plain"
	chmod -x "$TMP/plain"
	expect_status 126 "run --force: a file that cannot be executed" "$K" run --force "$TMP/plain"
	expect_status 125 "run: a library that is not there" "$K" run --library /nonexistent/libkashim.so true
}

is_sleep() { [ "$(cat "/proc/$1/comm" 2> /dev/null)" = sleep ]; }
inspect_sees() { "$K" inspect "$1" 2> /dev/null | grep -q ESTABLISHED; }

test_run_keeps_pid_and_signals() {
	bg "$K" run sh -c 'echo $$ > "$0"; exec sleep 30' "$TMP/pid"
	local pid=$BG status
	wait_for 60 test -s "$TMP/pid" || { fail "the scene did not get ready: no pid written within 60 s"; return; }
	if [ "$(cat "$TMP/pid")" = "$pid" ]; then ok "run execs: the program has kashim's pid"; else fail "pid $(cat "$TMP/pid") != $pid"; fi
	# the signal is for sleep, not for the sh before its exec
	wait_for 60 is_sleep "$pid" || { fail "the scene did not get ready: pid $pid is not sleep within 60 s"; return; }
	kill -TERM "$pid"
	wait "$pid"
	status=$?
	if [ "$status" -eq 143 ]; then ok "SIGTERM reaches the program (status 143)"; else fail "status $status"; fi
}

test_run_refuses_setuid() {
	need_root || return
	cp /usr/bin/true "$TMP/suid-true"
	chmod u+s "$TMP/suid-true"
	expect_status 125 "run: refuses a setuid program" "$K" run "$TMP/suid-true"
	if [ "$(wc -l < "$TMP/err")" -eq 1 ] && grep -q 'refusing .*suid-true: no: setuid' "$TMP/err"; then
		ok "in one line: $(cat "$TMP/err")"
	else
		fail "$(cat "$TMP/err")"
	fi
	expect_status 0 "run --force runs it anyway" "$K" run --force "$TMP/suid-true"
}

test_doctor() {
	need_cmd cc || return
	expect_status 0 "doctor: python3" "$K" doctor "$PY"
	expect_text "$TMP/out" "dynamic, glibc" 'yes: dynamically linked'
	expect_status 0 "doctor: curl reaches sockets through libcurl" "$K" doctor curl
	expect_text "$TMP/out" "names the library" 'its library libcurl\.so\.4 calls socket'
	printf 'int main(void) { return 0; }\n' > "$TMP/s.c"
	cc -static -o "$TMP/static" "$TMP/s.c" && expect_status 1 "doctor: a static binary" "$K" doctor "$TMP/static"
	expect_text "$TMP/out" "says static" 'no: statically linked'
	printf '__attribute__((section(".go.buildinfo"), used)) static const char b[] = "go";\nint main(void) { return 0; }\n' > "$TMP/go.c"
	cc -o "$TMP/gomark" "$TMP/go.c" && expect_status 1 "doctor: a binary with Go's build-info section (a stand-in for Go)" "$K" doctor "$TMP/gomark"
	expect_text "$TMP/out" "says Go" 'no: a Go program'
	printf '#!/bin/sh\nexit 0\n' > "$TMP/script.sh"
	chmod +x "$TMP/script.sh"
	expect_status 0 "doctor: a sh script" "$K" doctor "$TMP/script.sh"
	expect_text "$TMP/out" "judged by its interpreter" 'a script run by /bin/sh: yes'
	printf '#!/usr/bin/env python3\n' > "$TMP/script.py"
	expect_status 0 "doctor: an env python3 script" "$K" doctor "$TMP/script.py"
	expect_text "$TMP/out" "follows env to python3" 'a script run by .*python3.*: yes'
	printf '#!%s\n' "$TMP/static" > "$TMP/static-script"
	expect_status 1 "doctor: a script whose interpreter is static" "$K" doctor "$TMP/static-script"
	printf 'hello\n' > "$TMP/text"
	expect_status 1 "doctor: a text file" "$K" doctor "$TMP/text"
	expect_status 1 "doctor: a missing program" "$K" doctor no-such-program-kashim
	expect_text "$TMP/err" "says not found" 'not found in PATH'
	expect_status 2 "doctor: no argument" "$K" doctor
}

test_doctor_setuid_and_capabilities() {
	need_root || return
	need_cmd setcap || return
	cp /usr/bin/true "$TMP/suid"
	chmod u+s "$TMP/suid"
	expect_status 1 "doctor: a setuid copy" "$K" doctor "$TMP/suid"
	expect_text "$TMP/out" "says setuid" 'no: setuid'
	cp /usr/bin/true "$TMP/sgid"
	chmod g+s "$TMP/sgid"
	expect_status 1 "doctor: a setgid copy" "$K" doctor "$TMP/sgid"
	cp /usr/bin/true "$TMP/caps"
	setcap cap_net_raw+ep "$TMP/caps"
	expect_status 1 "doctor: a copy with file capabilities" "$K" doctor "$TMP/caps"
	expect_text "$TMP/out" "says capabilities" 'file capabilities'
}

# inspect PID agrees with the independent reader and with ss.
test_inspect_with_and_without_kashim() {
	local port server client
	port=$(free_port)
	bg "${SHIM[@]}" "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	server=$BG
	wait_listen "$port" || { fail "the scene did not get ready: no server within 60 s"; return; }
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	client=$BG
	expect_socket "$server" "state=ESTABLISHED" "$WANT" "the server's connection (sockpeek)"
	expect_status 0 "inspect the server" "$K" inspect "$server"
	expect_text "$TMP/out" "connection: on, 37 s, 11 s, 4, 81000 ms, next probe due" \
		"^[0-9]+ +ESTABLISHED +127\.0\.0\.1:$port +127\.0\.0\.1:[0-9]+ +on +37s +11s +4 +81000ms in [0-9.]+s \(0 unanswered\)$"
	expect_text "$TMP/out" "listener: on, no timer" "^[0-9]+ +LISTEN +127\.0\.0\.1:$port .* on +37s +11s +4 +81000ms -$"
	expect_status 0 "inspect the client without kashim" "$K" inspect "$client"
	expect_text "$TMP/out" "client: keepalive off, no timer" "^[0-9]+ +ESTABLISHED .*:$port +off .* 0ms -$"
	expect_status 0 "inspect --json" "$K" inspect --json "$server"
	"$PY" - "$TMP/out" "$(peek "$server")" "$port" <<'PYEOF' && ok "--json matches the kernel (sockpeek) fd by fd" || fail "--json differs: $(cat "$TMP/out")"
import json, re, sys
rows = json.load(open(sys.argv[1]))
peek = {int(m.group(1)): m.group(0) for m in re.finditer(r"fd=(\d+) .*", sys.argv[2])}
assert len(rows) == 2, rows
for r in rows:
    line = peek[r["fd"]]
    want = "keepalive=%d idle=%d interval=%d count=%d user_timeout=%d" % (
        r["keepalive"], r["idle_s"], r["interval_s"], r["count"], r["user_timeout_ms"])
    assert want in line and ("state=" + r["state"]) in line, (r, line)
    if r["state"] == "ESTABLISHED":
        assert r["timer"] == "keepalive" and 0 <= r["next_probe_ms"] <= 37000, r
PYEOF
	expect_status 1 "inspect: no such process" "$K" inspect 4194000
	expect_status 2 "inspect: not a pid" "$K" inspect abc
}

test_inspect_other_network_namespace() {
	need_root || return
	bg unshare -n sh -c "ip link set lo up; exec env LD_PRELOAD=$LIB ${KENV[*]} $PY -c '
import socket, time
l = socket.create_server((\"127.0.0.1\", 7001)); c = socket.create_connection((\"127.0.0.1\", 7001)); a, _ = l.accept()
time.sleep(30)'"
	wait_for 60 inspect_sees "$BG" ||
		{ fail "the scene did not get ready: no connection in pid $BG within 60 s"; return; }
	expect_status 0 "inspect a process in another network namespace" "$K" inspect "$BG"
	if [ "$(grep -cE 'ESTABLISHED .* on +37s .* in [0-9.]+s' "$TMP/out")" -eq 2 ]; then
		ok "both ends show their next probe (sock_diag asked in that namespace)"
	else
		fail "$(cat "$TMP/out")"
	fi
}

test_inspect_permission_denied() {
	need_root || return
	need_cmd setpriv || return
	bg sleep 30
	# kashim from a copy nobody can read: the checkout may be in a 0700 directory
	public_copy "$K" > "$TMP/why" || { fail "the scene did not get ready: $(cat "$TMP/why")"; return; }
	expect_status 1 "inspect as nobody on root's process" "${NOBODY[@]}" "$PUB/kashim" inspect "$BG"
	expect_text "$TMP/err" "a clear message" 'cannot (list|read) .* of pid [0-9]+: Permission denied|Operation not permitted'
}

test_dropin() {
	expect_status 0 "dropin" "$K" dropin --idle 30s --count 3
	if [ "$(cat "$TMP/out" | grep -v '^#')" = "[Service]
Environment=LD_PRELOAD=$LIB
Environment=KASHIM_IDLE=30s
Environment=KASHIM_COUNT=3" ]; then ok "the drop-in text"; else fail "$(cat "$TMP/out")"; fi
	cp "$TMP/out" "$TMP/dropin.conf"
	expect_status 2 "dropin: a bad value" "$K" dropin --idle 0
	need_cmd systemd-analyze || return
	mkdir -p "$TMP/units/example.service.d"
	cp "$ROOT/scripts/systemd/example.service" "$ROOT/scripts/systemd/example.socket" "$TMP/units/"
	cp "$TMP/dropin.conf" "$TMP/units/example.service.d/kashim.conf"
	(cd "$TMP/units" && SYSTEMD_LOG_LEVEL=debug systemd-analyze verify ./example.service ./example.socket) > "$TMP/verify" 2>&1
	if [ $? -eq 0 ] && grep -qF "Environment: LD_PRELOAD=$LIB" "$TMP/verify" && grep -q 'Environment: KASHIM_IDLE=30s' "$TMP/verify"; then
		ok "systemd-analyze verify accepts the drop-in and reads its variables"
	else
		fail "verify: $(grep -iE 'error|warn|kashim' "$TMP/verify" | head -5)"
	fi
	cp "$ROOT/scripts/systemd/kashim.conf" "$TMP/units/example.service.d/kashim.conf"
	(cd "$TMP/units" && systemd-analyze verify ./example.service) > "$TMP/verify" 2>&1 &&
		ok "the shipped example drop-in verifies too" || fail "$(cat "$TMP/verify")"
}

test_install_into_destdir() {
	local d=$TMP/destdir
	make -s -C "$ROOT" install DESTDIR="$d" PREFIX=/usr > "$TMP/inst" 2>&1 || { fail "make install: $(cat "$TMP/inst")"; return; }
	local f missing=""
	for f in usr/lib/libkashim.so usr/bin/kashim usr/bin/kashim-entrypoint \
		usr/share/man/man1/kashim.1 usr/share/man/man7/libkashim.7; do
		[ -e "$d/$f" ] || missing="$missing $f"
	done
	if [ -z "$missing" ]; then ok "make install puts all five files in place"; else fail "missing:$missing"; fi
	expect_status 0 "the installed kashim run finds the installed library" env -u LD_PRELOAD "$d/usr/bin/kashim" run printenv LD_PRELOAD
	if [ "$(cat "$TMP/out")" = "$d/usr/lib/libkashim.so" ]; then ok "LD_PRELOAD=$(cat "$TMP/out")"; else fail "$(cat "$TMP/out")"; fi
	expect_status 0 "the installed kashim gives keepalive" "$d/usr/bin/kashim" run --idle 41 "$PY" -c 'import socket; print(socket.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))'
	if [ "$(cat "$TMP/out")" = 41 ]; then ok "idle 41 from the installed library"; else fail "$(cat "$TMP/out")"; fi
	if need_cmd groff; then
		for f in "$d/usr/share/man/man1/kashim.1" "$d/usr/share/man/man7/libkashim.7"; do
			if [ -z "$(groff -man -ww -z "$f" 2>&1)" ]; then ok "$(basename "$f") renders without a warning"; else fail "$(groff -man -ww -z "$f" 2>&1 | head -3)"; fi
		done
	fi
	make -s -C "$ROOT" uninstall DESTDIR="$d" PREFIX=/usr > /dev/null 2>&1
	if [ -z "$(find "$d" -type f)" ]; then ok "make uninstall removes every file"; else fail "left: $(find "$d" -type f)"; fi
}

# The container entrypoint, as a runtime uses it: exec'd as PID-keeping
# wrapper, signals to the program, its status back; in several shells.
entrypoint_case() {
	local shell=$1
	need_cmd "$shell" || return
	expect_status 0 "$shell: the program runs with kashim" env -u LD_PRELOAD KASHIM_LIB="$LIB" KASHIM_IDLE=29 \
		"$shell" "$ROOT/scripts/kashim-entrypoint" "$PY" -c 'import os, socket
print(os.environ["LD_PRELOAD"], "KASHIM_LIB" in os.environ, socket.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))'
	if [ "$(cat "$TMP/out")" = "$LIB False 29" ] && [ ! -s "$TMP/err" ]; then
		ok "$shell: LD_PRELOAD set, KASHIM_LIB removed, idle 29"
	else
		fail "$shell: '$(cat "$TMP/out")' '$(cat "$TMP/err")'"
	fi
	expect_status 0 "$shell: an LD_PRELOAD naming kashim is kept" env LD_PRELOAD="$LIB" KASHIM_LIB="$LIB" \
		"$shell" "$ROOT/scripts/kashim-entrypoint" printenv LD_PRELOAD
	[ "$(cat "$TMP/out")" = "$LIB" ] && ok "$shell: not added twice" || fail "$(cat "$TMP/out")"
	expect_status 3 "$shell: the exit status comes back" env KASHIM_LIB="$LIB" "$shell" "$ROOT/scripts/kashim-entrypoint" sh -c 'exit 3'
	rm -f "$TMP/pid"
	bg env KASHIM_LIB="$LIB" "$shell" "$ROOT/scripts/kashim-entrypoint" sh -c 'echo $$ > "$0"; exec sleep 30' "$TMP/pid"
	local pid=$BG status
	wait_for 60 test -s "$TMP/pid" || { fail "the scene did not get ready: no pid written within 60 s"; return; }
	[ "$(cat "$TMP/pid")" = "$pid" ] && ok "$shell: the program keeps the entrypoint's pid" || fail "pid $(cat "$TMP/pid") != $pid"
	wait_for 60 is_sleep "$pid" || { fail "the scene did not get ready: pid $pid is not sleep within 60 s"; return; }
	kill -TERM "$pid"
	wait "$pid"
	status=$?
	[ "$status" -eq 143 ] && ok "$shell: SIGTERM reaches the program" || fail "$shell: status $status"
	expect_status 125 "$shell: no program given" "$shell" "$ROOT/scripts/kashim-entrypoint"
}

test_entrypoint_dash() { entrypoint_case dash; }
test_entrypoint_bash() { entrypoint_case bash; }
test_entrypoint_busybox() {
	need_cmd busybox || return
	mkdir -p "$TMP/bb"
	ln -s "$(command -v busybox)" "$TMP/bb/busybox-sh"
	printf '#!/bin/sh\nexec busybox sh "$@"\n' > "$TMP/bb/bbsh"
	chmod +x "$TMP/bb/bbsh"
	PATH="$TMP/bb:$PATH" entrypoint_case bbsh
}

# check --config FILE shows what kashim attach --config FILE makes of FILE,
# which reads FILE alone: a KASHIM_* variable of the caller's does not
# reach it (it did: idle=5s shown, 30s attached).
test_check_config_shows_attach_alone() {
	printf 'idle = 30s\n' > "$TMP/alone.conf"
	KASHIM_IDLE=5s "$K" check --config "$TMP/alone.conf" > "$TMP/out" 2>&1
	expect_text "$TMP/out" "the cgroup mode's line is the file's, not the caller's KASHIM_IDLE" \
		'^idle=30s interval=15s count=9 '
}

# What never stops the program from starting: a script that names musl's
# loader in a comment (it is no musl program: the glibc build, not the
# musl one that glibc's loader refuses), a FIFO as the program (nothing
# reads it), and an image without head or dirname (only sh, dd, tr, ls).
test_entrypoint_starts_whatever_it_finds() {
	local d=$TMP/epx rc
	mkdir -p "$d/bin"
	cp "$ROOT/scripts/kashim-entrypoint" "$ROOT/libkashim.so" "$d/"
	: > "$d/libkashim-musl.so" # an empty file: preloaded, the start fails
	printf '#!/bin/sh\n# also runs where ld-musl-x86_64.so.1 is the loader\necho "$LD_PRELOAD"; exit 3\n' > "$d/app"
	chmod +x "$d/app"
	(cd "$d" && sh ./kashim-entrypoint ./app) > "$TMP/out" 2> "$TMP/err"
	rc=$?
	if [ "$rc" = 3 ] && grep -qx "$d/\./libkashim.so" "$TMP/out"; then
		ok "a script naming ld-musl- gets the glibc build, by an absolute path (status 3 kept)"
	else
		fail "a script naming ld-musl-: status $rc, $(cat "$TMP/out" "$TMP/err" | head -3)"
	fi
	local c
	for c in sh dd tr ls; do ln -s "$(command -v "$c")" "$d/bin/$c"; done
	(cd "$d" && PATH=$d/bin sh ./kashim-entrypoint ./app) > "$TMP/out" 2> "$TMP/err"
	rc=$?
	if [ "$rc" = 3 ]; then ok "no head, no dirname, no sed: the program starts (status 3 kept)"; else fail "without head and dirname: status $rc, $(head -3 "$TMP/err")"; fi
	mkfifo "$d/fifo"
	timeout 20 sh "$d/kashim-entrypoint" "$d/fifo" > /dev/null 2>&1
	rc=$?
	if [ "$rc" != 124 ]; then ok "a FIFO as the program is not read (status $rc, exec's)"; else fail "a FIFO as the program: the entrypoint blocked"; fi
}

run_tests
