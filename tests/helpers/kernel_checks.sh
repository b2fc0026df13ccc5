#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What tests/t_kernels.sh runs inside each kernel of the matrix, as root,
# in the host's root shared read-only (/tmp a tmpfs, lo the only network,
# nothing else listening: fixed ports).  Under TCG a process start costs
# about 0.4 s and python's 5 s, so these checks start few processes and no
# python: the library under LD_PRELOAD (a C probe reading its options
# back, netcat's client and server read from outside), and the cgroup
# mode (attach, connections made and accepted over IPv4 and IPv6, a child
# cgroup, respect and force, rules with ports and mapped addresses,
# scope, replacement under connections, status, audit, detach, probe
# cleanup, the locked-memory limit, the refusal of an old kernel).  Each
# kernel's answers are "# fact NAME=VALUE" lines, for the matrix's table
# (docs/kernels.md).  make check-kernels runs the test files whole.
TEST_FILE=kernel
. "$(dirname "$0")/../lib.sh"

KASHIM=${TEST_KASHIM:-$ROOT/kashim} # TEST_KASHIM: another build (an old one, to see a check fail)
HOLD=$ROOT/tests/tcphold
CG_ARGS=(--idle 37 --interval 11 --count 4)
OWN="keepalive=1 idle=100 interval=20 count=3 user_timeout=5000"
OFF="keepalive=0 idle=7200"
CG=""

kc_cleanup() {
	local p
	exec 2> /dev/null
	for p in "${BG_PIDS[@]}"; do kill -KILL "$p"; done
	wait
	if [ -n "$CG" ]; then
		"$KASHIM" detach "$CG" > /dev/null
		rmdir "$CG"/* "$CG"
	fi
	cleanup
}

kc_cgroup() {
	CG=$(cgroup2_root)/kashim-kernel-$BASHPID
	trap kc_cleanup EXIT
	mkdir "$CG" "$CG/below" || { fail "cannot make $CG"; return 1; }
}

kc_attach() {
	"$KASHIM" attach "$@" "$CG" 2> "$TMP/attach.err" && return 0
	fail "kashim attach $*: $(cat "$TMP/attach.err")"
	return 1
}

# expect_socket PID PATTERN WANT WHAT, as lib.sh's, with one process a
# look (sockpeek; the matching in bash): within 60 s PID holds a socket
# whose line matches PATTERN, and that line has WANT.
expect_socket() {
	local pid=$1 pattern=$2 want=$3 what=$4 end=$((SECONDS + 60)) out line
	while :; do
		out=$("$PEEK" "$pid" 2> /dev/null)
		while IFS= read -r line; do
			[[ $line =~ $pattern ]] && break
			line=""
		done <<< "$out"
		[ -n "$line" ] || [ "$SECONDS" -ge "$end" ] && break
		sleep 0.1
	done
	if [ -z "$line" ]; then
		fail "the scene did not get ready: $what: no socket matching '$pattern' in pid $pid within 60 s: $(tr '\n' ';' <<< "$out")"
	elif [[ $line == *"$want"* ]]; then
		ok "$what: $line"
	else
		fail "$what: want '$want', kernel says: $line"
	fi
}

# listen_wait PID: PID listens (read from the kernel, not with ss: a
# process start is dear here).
listen_wait() {
	local end=$((SECONDS + 60))
	until [[ $("$PEEK" "$1" 2> /dev/null) == *state=LISTEN* ]]; do
		[ "$SECONDS" -lt "$end" ] || { fail "pid $1 did not listen within 60 s: $(cat "$TMP/bg.$1.log")"; return 1; }
		sleep 0.1
	done
}

# serve ADDR PORT [in]: a static tcphold server, in $CG with "in"; $BG.
serve() {
	if [ "${3:-}" = in ]; then bg incg "$CG" "$HOLD" serve-on "$1" "$2"; else bg "$HOLD" serve-on "$1" "$2"; fi
	listen_wait "$BG"
}

# made ADDR PORT WANT WHAT [own]: a static client in $CG connects; its
# socket must have WANT.
made() {
	bg incg "$CG" "$HOLD" connect-to "$1" "$2"
	expect_socket "$BG" "state=ESTABLISHED .*remote=\[?${1//./\\.}\]?:$2 " "$3" "$4"
}

# The library: the C probe reads every option back (TCP_USER_TIMEOUT
# too); netcat (dynamically linked, unmodified) as server over IPv4 and
# client over IPv6 under LD_PRELOAD, read from outside.
test_preload() {
	local server
	probe_case tcp
	bg "${SHIM[@]}" nc -d -l 127.0.0.1 7101
	server=$BG
	listen_wait "$server" || return
	bg nc -d 127.0.0.1 7101
	expect_socket "$server" "state=ESTABLISHED local=127\.0\.0\.1:7101 " "$WANT" "nc under LD_PRELOAD: accepted over IPv4"
	expect_socket "$BG" "state=ESTABLISHED .*remote=127\.0\.0\.1:7101 " "keepalive=0" "nc without it: untouched"
	bg nc -d -l ::1 7102
	listen_wait "$BG" || return
	bg "${SHIM[@]}" nc -d ::1 7102
	expect_socket "$BG" "state=ESTABLISHED .*remote=\[::1\]:7102 " "$WANT" "nc under LD_PRELOAD: made over IPv6"
}

# The cgroup mode from attach to detach, on one cgroup.
test_cgroup_mode() {
	kc_cgroup || return
	local announced old s4 s6
	kc_attach "${CG_ARGS[@]}" || return
	announced=$(grep -c . "$TMP/attach.err")
	serve 127.0.0.1 7201 && serve ::1 7202 && serve :: 7203 && serve 127.0.0.2 7204 || return
	made 127.0.0.1 7201 "$WANT" "made over IPv4"
	old=$BG
	expect_socket "${BG_PIDS[0]}" "state=ESTABLISHED" "keepalive=0" "its server outside the cgroup: untouched"
	made ::1 7202 "$WANT" "made over IPv6"
	serve 127.0.0.1 7205 in && s4=$BG && serve ::1 7206 in && s6=$BG || return
	bg "$HOLD" connect-to 127.0.0.1 7205
	bg "$HOLD" connect-to ::1 7206
	expect_socket "$s4" "state=ESTABLISHED local=127\.0\.0\.1:7205 " "$WANT" "accepted over IPv4"
	expect_socket "$s6" "state=ESTABLISHED local=\[::1\]:7206 " "$WANT" "accepted over IPv6"
	expect_socket "$s4" "state=LISTEN" "keepalive=0" "the listener itself: untouched"
	bg incg "$CG/below" "$HOLD" connect-to 127.0.0.1 7201
	expect_socket "$BG" "state=ESTABLISHED" "$WANT" "a process in a child cgroup"

	# respect: what the kernel's answer to attach's probe makes right
	serve 127.0.0.1 7207 || return
	bg incg "$CG" "$HOLD" connect 7207 own
	if [ "$announced" = 0 ]; then
		echo "# fact respect=kept"
		expect_socket "$BG" ESTABLISHED "$OWN" "respect, nothing announced: the program's own settings stay"
	elif [ "$announced" = 1 ] && grep -qE "^kashim attach: this kernel \($(uname -r | sed 's/[.+]/\\&/g')\) cannot read a socket's own keepalive from BPF .*: --mode respect acts as force here$" "$TMP/attach.err"; then
		echo "# fact respect=force"
		ok "one line announces that respect acts as force: $(cat "$TMP/attach.err")"
		expect_socket "$BG" ESTABLISHED "$WANT" "respect acting as force: kashim's values"
	else
		fail "attach said: $(cat "$TMP/attach.err")"
	fi
	"$KASHIM" status > "$TMP/status" 2>&1
	expect_text "$TMP/status" "status: the settings and the count" "^$(re_quote "$CG") idle=37s interval=11s count=4 user_timeout=81000ms mode=respect connections=[0-9]+ refused=0"
	if [ "$announced" = 0 ]; then
		if grep -q "respect acted as force" "$TMP/status"; then fail "status counts a fallback: $(cat "$TMP/status")"; else ok "status counts no fallback"; fi
	else
		expect_text "$TMP/status" "status counts the fallback" "^  respect acted as force on [1-9][0-9]* connections: "
	fi

	# replaced under connections: rules (an address, ports, IPv6, mapped)
	kc_attach --idle 50 --interval 5 --count 2 --user-timeout 9s \
		--only 127.0.0.0/8,[::1]:7202,:7203 --skip 127.0.0.2,:7205 || return
	expect_socket "$old" "state=ESTABLISHED" "$WANT" "a connection made before the replacement keeps its options"
	local new="keepalive=1 idle=50 interval=5 count=2 user_timeout=9000"
	made 127.0.0.1 7201 "$new" "the new settings: 127.0.0.1 in ONLY"
	made 127.0.0.2 7204 "$OFF" "SKIP 127.0.0.2"
	made 127.0.0.1 7205 "$OFF" "SKIP :7205 (a port)"
	made ::1 7202 "$new" "ONLY [::1]:7202 (IPv6 and a port)"
	made ::1 7206 "$OFF" "[::1]:7206 is in no ONLY rule"
	made ::ffff:127.0.0.1 7203 "$new" "::ffff:127.0.0.1 matched as 127.0.0.1 (ONLY)"
	made ::ffff:127.0.0.2 7203 "$OFF" "::ffff:127.0.0.2 matched as 127.0.0.2 (SKIP)"
	"$KASHIM" status > "$TMP/status" 2>&1
	expect_text "$TMP/status" "status: a SKIP rule and what it skipped" "^  skip 127\.0\.0\.2/32 skipped=2$"

	# scope and force
	kc_attach "${CG_ARGS[@]}" --scope client --mode force || return
	serve 127.0.0.1 7208 in || return
	s4=$BG
	bg "$HOLD" connect-to 127.0.0.1 7208
	expect_socket "$s4" "state=ESTABLISHED local=127\.0\.0\.1:7208 " "$OFF" "--scope client: an accepted connection is left alone"
	bg incg "$CG" "$HOLD" connect 7207 own
	expect_socket "$BG" ESTABLISHED "$WANT" "--scope client --mode force: a made one gets kashim's values over the program's own"

	# audit, detach
	"$KASHIM" audit > "$TMP/audit" 2>&1
	expect_text "$TMP/audit" "audit: tcphold in the cgroup, its connections with keepalive" \
		"^$(re_quote "$HOLD") +/$(re_quote "${CG##*/}") +[0-9,+]+ +[0-9]+ +[1-9][0-9]* "
	expect_status 0 "detach" "$KASHIM" detach "$CG"
	made 127.0.0.1 7201 "$OFF" "after detach: a new connection is left alone"
	"$KASHIM" status > "$TMP/status" 2>&1
	if grep -qF "$CG" "$TMP/status"; then fail "status still lists $CG"; else ok "status no longer lists $CG"; fi
	if ls -d "$(cgroup2_root)"/kashim-probe-* > /dev/null 2>&1; then
		fail "probe cgroups left: $(ls -d "$(cgroup2_root)"/kashim-probe-*)"
	else
		ok "no probe cgroup left"
	fi
}

# Attach, replace and detach again and again (on 5.10 each attach after
# the first was refused: attach's probe was charged to RLIMIT_MEMLOCK
# before attach raised it); then attach with a locked-memory limit of 0
# that it cannot raise (no CAP_SYS_RESOURCE): a kernel that charges BPF
# memory to it refuses, in one line naming the limit and its value; one
# that does not attaches.
test_memlock() {
	kc_cgroup || return
	local i bad=""
	for i in 1 2 3; do
		"$KASHIM" attach --idle "3$i" "$CG" 2>> "$TMP/err" || bad="$bad attach $i;"
		"$KASHIM" attach --idle "4$i" --mode force "$CG" 2>> "$TMP/err" || bad="$bad replace $i;"
		"$KASHIM" detach "$CG" > /dev/null 2>> "$TMP/err" || bad="$bad detach $i;"
	done
	if [ -z "$bad" ]; then ok "3 x attach, replace, detach"; else fail "failed:$bad $(grep -v 'acts as force' "$TMP/err" | head -c 300)"; fi
	capsh --drop=cap_sys_resource -- -c 'ulimit -l 0 && exec "$0" attach "$1"' "$KASHIM" "$CG" \
		> /dev/null 2> "$TMP/err"
	case $? in
	0)
		echo "# fact memlock=free"
		ok "with RLIMIT_MEMLOCK 0 and no CAP_SYS_RESOURCE attach works: BPF memory is not charged to it"
		;;
	1)
		echo "# fact memlock=charged"
		if [ "$(wc -l < "$TMP/err")" = 1 ] && grep -qE "^kashim attach: bpf\(2\) was refused \(Operation not permitted\): this kernel \([^)]*\) charges BPF programs and maps to the locked-memory limit \(RLIMIT_MEMLOCK\), which is 0 KiB here and this process cannot raise \(it lacks CAP_SYS_RESOURCE\): .*; nothing attached$" "$TMP/err"; then
			ok "with RLIMIT_MEMLOCK 0 and no CAP_SYS_RESOURCE: one line names the locked-memory limit and its value"
		else
			fail "the refusal does not name the locked-memory limit: $(cat "$TMP/err")"
		fi
		;;
	*) fail "attach under capsh: $(cat "$TMP/err")" ;;
	esac
}

# The largest program attach makes: 256 rules in each list (the verifier
# of each kernel must take it), the last ONLY rule in force.
test_largest_program() {
	kc_cgroup || return
	serve 127.0.0.1 7301 || return
	kc_attach "${CG_ARGS[@]}" --only "$(seq -s, -f ':%g' 1 255),:7301" \
		--skip "$(seq -s, -f ':%g' 1 255),127.0.0.2" || return
	ok "256 ONLY and 256 SKIP rules attached"
	made 127.0.0.1 7301 "$WANT" "the 256th ONLY rule matches"
}

# A kernel older than the oldest the matrix has (as uname(2) reports it
# under the UNAME26 personality, 2.6.x): one line, nothing attached.
test_old_kernel_refused() {
	kc_cgroup || return
	expect_status 1 "an old kernel" setarch "$(uname -m)" --uname-2.6 "$KASHIM" attach "$CG"
	expect_text "$TMP/err" "one line names the oldest kernel" "^kashim attach: this kernel \(2\.6\.[^)]*\) is older than "
	[ "$(wc -l < "$TMP/err")" = 1 ] && ok "one line" || fail "$(cat "$TMP/err")"
}

echo "# fact release=$(uname -r)"
echo "# RLIMIT_MEMLOCK at boot: $(ulimit -l) KiB"
run_tests
