# SPDX-License-Identifier: MIT
# Shared helpers for the shell tests.  Source it, define test_* functions,
# then call run_tests.  Each test runs in its own subshell; processes it
# starts with bg are killed when it ends, pass or fail.
set -u
ROOT=${TESTS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
LIB=${TEST_LIB:-$ROOT/libkashim.so} # TEST_LIB: an instrumented build
PROBE=$ROOT/tests/probe
PEEK=$ROOT/tests/sockpeek
PY=/usr/bin/python3
HELPERS=$ROOT/tests/helpers

# The configuration most tests use: values no kernel default has, so a
# match proves kashim set them.
KENV=(KASHIM_IDLE=37 KASHIM_INTERVAL=11 KASHIM_COUNT=4)
WANT="keepalive=1 idle=37 interval=11 count=4 user_timeout=81000"
SHIM=(env LD_PRELOAD="$LIB" "${KENV[@]}")

T=""
ok() { echo "ok - $T${1:+: $1}"; }
fail() { echo "not ok - $T: $*"; TEST_FAILED=1; }
skip() { echo "skip - $T: $*"; TEST_SKIPPED=1; }

need_root() {
	[ "$(id -u)" = 0 ] && return 0
	skip "needs root (network namespaces, tc)"
	return 1
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" > /dev/null 2>&1 && continue
		skip "$c is not installed"
		return 1
	done
}

TMP=""
BG_PIDS=()
# bg CMD...: start CMD in the background; its pid is in $BG, its output
# in $TMP/bg.PID.log.  The log is opened here, before the fork: when the
# child opened it, a loaded machine could run the rename first ("mv: cannot
# stat bg.next.log") and the output went to the next command's log.
bg() {
	local fd
	exec {fd}> "$TMP/bg.next.log"
	"$@" >&"$fd" 2>&1 {fd}>&- &
	BG=$!
	exec {fd}>&-
	mv "$TMP/bg.next.log" "$TMP/bg.$BG.log"
	BG_PIDS+=("$BG")
}

cleanup() {
	local p
	trap '' TERM INT HUP # a stop signals the whole group, often twice
	exec 2> /dev/null # no job-control notices for the processes killed here
	for p in "${BG_PIDS[@]}"; do
		# The parent first, so that it cannot replace its children
		# (an nginx master respawns workers), then the children.
		local kids
		kids=$(pgrep -P "$p")
		kill -KILL "$p" $kids 2> /dev/null
	done
	wait 2> /dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
	return 0
}

# A TCP port free on loopback now.
free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS CMD...: runs CMD every 0.1 s until it succeeds (status 0)
# or SECONDS have passed (then status 1).  The bound is for a loaded
# machine: a state that is right comes in well under it, so a generous
# bound costs nothing when the test passes.
wait_for() {
	local limit=$1 end
	shift
	end=$((SECONDS + limit))
	while :; do
		"$@" && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# wait_listen PORT: up to 60 s (a JVM compiling its source is slow, more so
# on a loaded machine) for something to listen on PORT.
listening() { ss -Htln "sport = :$1" | grep -q .; }
wait_listen() { wait_for 60 listening "$1"; }

# What runs as another user (nobody) must not be read from the checkout: a
# clone under a 0700 directory (a home on Debian 12, /root, mktemp -d) is
# out of its reach.  public_copy FILE...: copies of FILEs in $PUB, a
# directory in $TMP that every user can read (gone with $TMP); it fails,
# saying why on stdout, when nobody still cannot read one (a private
# $TMPDIR).
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
PUB=""
public_copy() {
	local f
	PUB=$TMP/pub
	mkdir -p "$PUB" && chmod 711 "$TMP" && chmod 755 "$PUB" || return 1
	for f in "$@"; do
		cp "$f" "$PUB/" && chmod a+rX "$PUB/${f##*/}" || return 1
		if ! "${NOBODY[@]}" test -r "$PUB/${f##*/}"; then
			echo "nobody (uid 65534) cannot read $PUB/${f##*/} (is a directory above it private?)"
			return 1
		fi
	done
}

# The first cgroup2 mount point of /proc/self/mountinfo (the field after
# " - " is the file system type; the mount point is field 5).
cgroup2_root() {
	awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
		/proc/self/mountinfo
}

# incg DIR CMD...: CMD moved into cgroup DIR before it starts (the shell
# moves itself, then execs CMD: the same pid, no connection made outside);
# called in a subshell (bg), whose pid it keeps.
incg() {
	local dir=$1
	shift
	exec sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' incg "$dir" "$@"
}

# peek PID: the kernel's view of PID's sockets, one line each.
peek() { "$PEEK" "$1"; }

# expect_socket PID PATTERN WANT WHAT: within 60 s, PID holds a socket whose
# line matches the extended regex PATTERN; that line must contain WANT.
has_socket() { peek "$1" 2> /dev/null | grep -qE -- "$2"; }
expect_socket() {
	local pid=$1 pattern=$2 want=$3 what=$4 line=""
	wait_for 60 has_socket "$pid" "$pattern" &&
		line=$(peek "$pid" 2> /dev/null | grep -E -- "$pattern" | head -n 1)
	if [ -z "$line" ]; then
		fail "the scene did not get ready: $what: no socket matching '$pattern' in pid $pid within 60 s: $(peek "$pid" 2>&1 | tr '\n' ';')"
	elif [[ $line == *"$want"* ]]; then
		ok "$what: $line"
	else
		fail "$what: want '$want', kernel says: $line"
	fi
}

# probe_case CASE: the C probe under kashim with the test configuration;
# it prints its own ok/not ok lines, and kashim must write nothing.
probe_case() {
	"${SHIM[@]}" "$PROBE" "$1" 37 11 4 81000 2> "$TMP/err"
	if [ -s "$TMP/err" ]; then
		fail "the shim wrote to stderr with a good configuration: $(head -c 300 "$TMP/err")"
	else
		ok "nothing on stderr"
	fi
}

# expect_status WANT WHAT CMD...: CMD's exit status is WANT; its stdout is
# in $TMP/out and its stderr in $TMP/err.
expect_status() {
	local want=$1 what=$2 got
	shift 2
	"$@" > "$TMP/out" 2> "$TMP/err"
	got=$?
	if [ "$got" -eq "$want" ]; then
		ok "$what (status $got)"
	else
		fail "$what: status $got, want $want; stderr: $(head -c 300 "$TMP/err")"
	fi
}

# re_quote TEXT: TEXT as an extended regex that matches it literally (a
# path in a pattern: a checkout may be cloned anywhere, /src/c++/kashim).
re_quote() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }

# expect_text FILE WHAT PATTERN: FILE has a line matching the regex.
expect_text() {
	if grep -qE -- "$3" "$1"; then ok "$2"; else fail "$2: '$3' not in: $(head -c 400 "$1")"; fi
}

# pids_of_children PID: the direct children of PID.
children() { pgrep -P "$1"; }

run_tests() {
	local t
	for t in $(declare -F | awk '$3 ~ /^test_/ {print $3}'); do
		# TEST_ONLY=NAME: that test alone (a test that runs another)
		[ -n "${TEST_ONLY:-}" ] && [ "$t" != "test_$TEST_ONLY" ] && continue
		(
			T="${TEST_FILE:-$(basename "$0" .sh)}: ${t#test_}"
			TMP=$(mktemp -d)
			trap cleanup EXIT
			# the runner's timeout (or a ^C) ends a test through its
			# EXIT trap too: no mount, cgroup or process left behind
			trap 'exit 143' TERM INT HUP
			"$t"
		)
	done
	return 0 # results are the ok/not ok/skip lines, not the status
}

# fuzz_corpus LABEL CORPUS [OPTION...]: runs the libFuzzer target built as
# $TMP/fuzz for FUZZ_SECONDS (20) from CORPUS; it passes with more than
# 1000 executions and no crash, sanitizer report or (-timeout=) slow input.
fuzz_corpus() {
	local label=$1 corpus=$2 rc runs
	shift 2
	mkdir -p "$TMP/corpus"
	(cd "$TMP" && ./fuzz -max_total_time="${FUZZ_SECONDS:-20}" -print_final_stats=1 "$@" \
		"$TMP/corpus" "$corpus") > "$TMP/fuzz.log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TMP/fuzz.log")
	if [ "$rc" -eq 0 ] && [ -n "$runs" ] && [ "$runs" -gt 1000 ]; then
		ok "libFuzzer: $runs executions in ${FUZZ_SECONDS:-20} s, no crash, no sanitizer report"
		echo "# $label executions: $runs"
	else
		fail "fuzzer status $rc: $(grep -m5 -E 'ERROR|SUMMARY|abort|Test unit|timeout' "$TMP/fuzz.log")"
	fi
}
