# SPDX-License-Identifier: MIT
# Layer 5: sanitizers and fuzzing (clang 14 and valgrind).
# - the configuration parser fuzzed by libFuzzer (+ASan+UBSan);
# - the unit tests and every probe case under ASan+UBSan, with the shim
#   linked into the probe (it interposes from the executable the same way);
# - the thread stress under ThreadSanitizer, built the same way;
# - the preloaded library under valgrind memcheck;
# - the whole suite of real programs against a library built with UBSan in
#   trap mode (no runtime to preload: any undefined behaviour kills the
#   program, and the test that ran it fails).
# - the suites whose programs can host the ASan runtime (the C probe,
#   python3) against a library built with ASan+UBSan, the runtime preloaded
#   first.  Not the others: the ASan runtime deadlocks some programs by
#   itself (curl in setlocale, seen here), and java and node bring their own
#   signal and memory handling.
. "$(dirname "$0")/lib.sh"

CLANG=${CLANG:-$(command -v clang || command -v clang-14 || echo clang)}
SAN="-g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all"
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1

# sanitized_build OUT SANITIZERS: the probe with shim.c and config.c in it.
sanitized_probe() {
	"$CLANG" $SAN -fsanitize="$2" -I"$ROOT" -o "$1" "$ROOT/tests/probe.c" "$ROOT/shim.c" \
		"$ROOT/config.c" -pthread -ldl 2> "$TMP/build.err" || {
		fail "build with -fsanitize=$2: $(head -5 "$TMP/build.err")"
		return 1
	}
}

# no_reports FILE WHAT: no sanitizer or valgrind report in FILE.
no_reports() {
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer|ERROR SUMMARY: [1-9]' "$1"; then
		fail "$2: $(grep -m3 -E 'ERROR|runtime error|WARNING' "$1")"
	else
		ok "$2: no report"
	fi
}

test_fuzz_the_configuration_parser() {
	need_cmd "$CLANG" || return
	"$CLANG" $SAN -fsanitize=fuzzer,address,undefined -I"$ROOT" -o "$TMP/fuzz" \
		"$ROOT/tests/fuzz/fuzz_config.c" "$ROOT/config.c" 2> "$TMP/build.err" ||
		{ fail "build: $(head -5 "$TMP/build.err")"; return; }
	fuzz_corpus fuzz "$ROOT/tests/fuzz/corpus"
}

test_unit_tests_under_asan_ubsan() {
	need_cmd "$CLANG" || return
	"$CLANG" $SAN -fsanitize=address,undefined -I"$ROOT" -o "$TMP/test_config" \
		"$ROOT/tests/test_config.c" "$ROOT/config.c" 2> "$TMP/build.err" ||
		{ fail "build: $(head -5 "$TMP/build.err")"; return; }
	"$TMP/test_config" > "$TMP/out" 2>&1
	local rc=$?
	if [ "$rc" -eq 0 ] && ! grep -q '^not ok' "$TMP/out"; then
		ok "$(grep -c '^ok' "$TMP/out") unit checks pass under ASan+UBSan"
	else
		fail "status $rc: $(grep -m3 -E '^not ok|ERROR|runtime error' "$TMP/out")"
	fi
	no_reports "$TMP/out" "unit tests"
}

test_probe_cases_under_asan_ubsan() {
	need_cmd "$CLANG" || return
	sanitized_probe "$TMP/probe-asan" address,undefined || return
	local c bad=0 total=0
	for c in tcp nontcp errno accept connect threads fork mptcp stress signals forkstorm vfork seccomp stale; do
		env "${KENV[@]}" "$TMP/probe-asan" "$c" 37 11 4 81000 > "$TMP/$c.out" 2>&1
		total=$((total + $(grep -c '^ok' "$TMP/$c.out")))
		if grep -q '^not ok' "$TMP/$c.out" || grep -qE 'ERROR: AddressSanitizer|runtime error:' "$TMP/$c.out"; then
			fail "probe $c under ASan+UBSan: $(grep -m3 -E '^not ok|ERROR|runtime error' "$TMP/$c.out")"
			bad=1
		fi
	done
	[ "$bad" -eq 0 ] && ok "14 probe cases, $total checks, under ASan+UBSan: all pass, no report"
}

test_thread_stress_under_tsan() {
	need_cmd "$CLANG" || return
	sanitized_probe "$TMP/probe-tsan" thread || return
	local c
	for c in stress threads signals; do
		env "${KENV[@]}" "$TMP/probe-tsan" "$c" 37 11 4 81000 > "$TMP/$c.out" 2>&1
		if grep -q '^not ok' "$TMP/$c.out"; then
			fail "probe $c under TSan: $(grep -m3 '^not ok' "$TMP/$c.out")"
		else
			no_reports "$TMP/$c.out" "probe $c under ThreadSanitizer ($(grep -m1 '^ok' "$TMP/$c.out" | sed 's/^ok - probe [a-z]*: //'))"
		fi
	done
}

test_valgrind_memcheck() {
	need_cmd valgrind || return
	local c
	# (not "fork": under valgrind /proc/self/exe is valgrind's own tool)
	for c in tcp nontcp errno accept connect threads stale; do
		env LD_PRELOAD="$LIB" "${KENV[@]}" valgrind --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite --trace-children=no "$PROBE" "$c" 37 11 4 81000 \
			> "$TMP/$c.out" 2>&1
		if [ $? -eq 99 ] || grep -q '^not ok' "$TMP/$c.out"; then
			fail "memcheck $c: $(grep -m3 -E '^not ok|Invalid|uninitialised|definitely' "$TMP/$c.out")"
		else
			no_reports "$TMP/$c.out" "valgrind memcheck, probe $c with libkashim.so preloaded"
		fi
	done
}

test_whole_suite_against_a_ubsan_library() {
	need_cmd "$CLANG" || return
	"$CLANG" -g -O1 -fsanitize=undefined -fsanitize-trap=undefined -fPIC -shared \
		-fvisibility=hidden -o "$TMP/libkashim-ubsan.so" "$ROOT/shim.c" "$ROOT/config.c" -ldl \
		2> "$TMP/build.err" || { fail "build: $(head -5 "$TMP/build.err")"; return; }
	local f files=()
	for f in t_probe t_programs t_inherit t_policy t_messages t_ctor t_stress t_syscalls t_deadpeer; do
		files+=("tests/$f.sh")
	done
	(cd "$ROOT" && TEST_LIB="$TMP/libkashim-ubsan.so" bash tests/run "${files[@]}") > "$TMP/suite.log" 2>&1
	# Relay the suite's own lines, marked as this run's.
	sed -n 's/^\(ok\|not ok\|skip\) - /\1 - ubsan library: /p' "$TMP/suite.log"
}

test_suites_against_an_asan_library() {
	need_cmd "$CLANG" || return
	local rt f files=()
	rt=$("$CLANG" -print-file-name=libclang_rt.asan-x86_64.so)
	"$CLANG" $SAN -fsanitize=address,undefined -shared-libsan -fPIC -shared -fvisibility=hidden \
		-o "$TMP/libkashim-asan.so" "$ROOT/shim.c" "$ROOT/config.c" -ldl 2> "$TMP/build.err" ||
		{ fail "build: $(head -5 "$TMP/build.err")"; return; }
	for f in t_probe t_stress t_inherit t_messages t_ctor t_syscalls; do
		files+=("tests/$f.sh")
	done
	# Leaks are not checked: python3 leaves memory to the exit by design.
	(cd "$ROOT" && ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:verify_asan_link_order=0 \
		TEST_LIB="$rt:$TMP/libkashim-asan.so" bash tests/run "${files[@]}") > "$TMP/suite.log" 2>&1
	# The memory-pressure case preloads its own malloc before ASan's, which
	# ASan refuses: it runs in the plain and UBSan suites instead.
	grep -v 'memory_pressure_at_load' "$TMP/suite.log" |
		sed -n 's/^\(ok\|not ok\|skip\) - /\1 - asan library: /p'
	if grep -q 'ERROR: AddressSanitizer' "$TMP/suite.log"; then
		fail "AddressSanitizer report: $(grep -m1 -A3 'ERROR: AddressSanitizer' "$TMP/suite.log")"
	fi
}

run_tests
