# SPDX-License-Identifier: MIT
# The kashim command under hostile input: environment files, libraries and
# programs that are FIFOs, devices, directories, /proc files, huge or
# truncated or damaged ELF files, odd #! lines, repeated options, library
# paths the loader or systemd would split, stale LD_PRELOAD entries; and the
# ELF reader fuzzed.  Every command runs under a time limit: a hang fails.
# TEST_KASHIM=path runs it against another build of the command.
. "$(dirname "$0")/lib.sh"

K=${TEST_KASHIM:-$ROOT/kashim}
MANGLE=$ROOT/tests/helpers/elfmangle.py
CLANG=${CLANG:-$(command -v clang || command -v clang-14 || echo clang)}

# bounded WANT WHAT CMD...: CMD ends within 20 s with status WANT; its
# stdout is in $TMP/out (at most 1 MiB kept) and stderr in $TMP/err.
bounded() {
	local want=$1 what=$2 got
	shift 2
	timeout -k 2 20 "$@" 2> "$TMP/err" | head -c 1048576 > "$TMP/out"
	got=${PIPESTATUS[0]}
	if [ "$got" = 124 ] || [ "$got" = 137 ]; then
		fail "$what: still running after 20 s"
	elif [ "$got" -eq "$want" ]; then
		ok "$what (status $got)"
	else
		fail "$what: status $got, want $want; stderr: $(head -c 300 "$TMP/err")"
	fi
}

# says FILE WHAT TEXT: FILE holds TEXT (a fixed string).
says() {
	if grep -qF -- "$3" "$1"; then ok "$2"; else fail "$2: '$3' not in: $(head -c 400 "$1")"; fi
}

# idle_of CMD...: the TCP_KEEPIDLE a new socket gets from python3 run by CMD.
idle_of() {
	timeout 20 "$@" "$PY" -c 'import socket; print(socket.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))' 2> "$TMP/err"
}

test_check_env_file_that_is_not_a_file() {
	mkfifo "$TMP/fifo"
	mkdir "$TMP/dir"
	ln -s "$TMP/fifo" "$TMP/link-to-fifo"
	local f
	for f in "$TMP/fifo" "$TMP/link-to-fifo" /dev/zero /dev/urandom "$TMP/dir" /proc/self/mem; do
		bounded 1 "check --env-file $f" "$K" check --env-file "$f"
		says "$TMP/err" "$f: a message that says why" "kashim: cannot read $f: "
		if [ "$(wc -c < "$TMP/out")" -lt 100 ]; then ok "$f: nothing printed"; else fail "$f: $(wc -c < "$TMP/out") bytes on stdout"; fi
	done
	says "$TMP/err" "a /proc file that cannot be read: the kernel's error" "Input/output error"
	bounded 1 "check --env-file on a FIFO, named the other way" "$K" check --env-file="$TMP/fifo"
	says "$TMP/err" "it says it is a FIFO" "not a regular file (a FIFO)"
}

test_check_env_file_too_large_or_binary() {
	head -c 2000000 /dev/zero | tr '\0' '#' > "$TMP/big.env"
	bounded 1 "check --env-file: a 2 MB file" "$K" check --env-file "$TMP/big.env"
	says "$TMP/err" "says it is too large" "larger than 1 MiB, not an environment file"
	printf 'KASHIM_IDLE=5\nA=b\0c\nKASHIM_COUNT=3\n' > "$TMP/nul.env"
	bounded 1 "check --env-file: a NUL byte inside a line" "$K" check --env-file "$TMP/nul.env"
	says "$TMP/err" "names the line" "nul.env:2: not a KEY=VALUE line"
	grep -q '^KASHIM_COUNT *3$' "$TMP/out" && ok "the lines after it are still read" || fail "$(cat "$TMP/out")"
	printf 'KASHIM_IDLE=44' > "$TMP/nonl.env"
	bounded 0 "check --env-file: no newline at the end" "$K" check --env-file "$TMP/nonl.env"
	grep -q '^KASHIM_IDLE *44s$' "$TMP/out" && ok "the last line counts" || fail "$(cat "$TMP/out")"
}

test_repeated_options_last_one_wins() {
	local args=() i
	for i in $(seq 10000); do args+=(--idle 5 --debug); done
	bounded 0 "run: 10000 x --idle 5 --debug, then --idle 7" "$K" run "${args[@]}" --idle 7 printenv KASHIM_IDLE
	[ "$(cat "$TMP/out")" = 7 ] && ok "KASHIM_IDLE=7: the last one wins" || fail "KASHIM_IDLE=$(cat "$TMP/out")"
	[ "$(idle_of "$K" run "${args[@]}" --idle 7)" = 7 ] && ok "the kernel's TCP_KEEPIDLE is 7" || fail "idle $(idle_of "$K" run "${args[@]}" --idle 7): $(head -c 200 "$TMP/err")"
	bounded 0 "dropin: 10000 x --count 3, then --count 4 --idle 9 --library L --library LIB" \
		"$K" dropin "${args[@]}" --count 3 --count 4 --idle 9 --library /nonexistent --library "$LIB"
	if [ "$(grep -c '^Environment=KASHIM_IDLE=' "$TMP/out")" = 1 ] && grep -qx 'Environment=KASHIM_IDLE=9' "$TMP/out" &&
		grep -qx 'Environment=KASHIM_COUNT=4' "$TMP/out" && grep -qx 'Environment=KASHIM_DEBUG=1' "$TMP/out" &&
		grep -qxF "Environment=LD_PRELOAD=$LIB" "$TMP/out"; then
		ok "one line per variable, each with the last value"
	else
		fail "$(cat "$TMP/out")"
	fi
	bounded 2 "run: a repeated option with a bad last value starts nothing" "$K" run --idle 5 --idle 0 touch "$TMP/ran"
	[ -e "$TMP/ran" ] && fail "the program ran" || ok "the program did not run"
}

test_library_that_is_not_a_library() {
	mkfifo "$TMP/libkashim.so"
	mkdir -p "$TMP/dir/libkashim.so"
	echo "not a library" > "$TMP/text.so"
	local l
	for l in "$TMP/libkashim.so" "$TMP/dir/libkashim.so" "$TMP/text.so" /dev/null; do
		bounded 125 "run --library $l" "$K" run --library "$l" touch "$TMP/ran"
		says "$TMP/err" "$l: says it cannot use it" "cannot find libkashim.so at $l"
		bounded 1 "dropin --library $l" "$K" dropin --library "$l"
	done
	[ -e "$TMP/ran" ] && fail "the program ran without kashim" || ok "nothing ran without kashim"
}

test_library_path_with_space_or_colon() {
	mkdir -p "$TMP/a b" "$TMP/a:b"
	cp "$LIB" "$TMP/a b/libkashim.so"
	cp "$LIB" "$TMP/a:b/libkashim.so"
	local l
	for l in "$TMP/a b/libkashim.so" "$TMP/a:b/libkashim.so"; do
		bounded 125 "run --library '$l'" "$K" run --library "$l" touch "$TMP/ran"
		says "$TMP/err" "run says why" "the loader splits LD_PRELOAD at spaces and colons"
		bounded 1 "dropin --library '$l'" "$K" dropin --library "$l"
		says "$TMP/err" "dropin says why" "cannot preload $l"
		[ -s "$TMP/out" ] && fail "dropin wrote: $(cat "$TMP/out")" || ok "dropin wrote nothing"
	done
	[ -e "$TMP/ran" ] && fail "the program ran without kashim" || ok "nothing ran without kashim"
	# A path without them that leads there works.
	ln -s "$TMP/a b/libkashim.so" "$TMP/plain.so"
	[ "$(idle_of "$K" run --idle 42 --library "$TMP/plain.so")" = 42 ] &&
		ok "a symlink without a space to it: the kernel's TCP_KEEPIDLE is 42" || fail "$(head -c 300 "$TMP/err")"
}

test_stale_and_odd_ld_preload() {
	[ "$(idle_of env LD_PRELOAD=/nonexistent/libkashim.so "$K" run --idle 41)" = 41 ] &&
		ok "a stale libkashim.so in LD_PRELOAD: the real one is added, TCP_KEEPIDLE 41" ||
		fail "idle: $(idle_of env LD_PRELOAD=/nonexistent/libkashim.so "$K" run --idle 41); $(head -c 300 "$TMP/err")"
	says "$TMP/err" "and the stale one dropped with a message" "kashim run: dropping /nonexistent/libkashim.so from LD_PRELOAD: No such file or directory"
	# (Not a FIFO: the loader would hang starting kashim itself.)
	mkdir "$TMP/libkashim.so"
	local m=/lib/x86_64-linux-gnu/libm.so.6
	bounded 0 "LD_PRELOAD with a directory named libkashim.so and empty entries" \
		env LD_PRELOAD=" :$TMP/libkashim.so:: $m  :" "$K" run printenv LD_PRELOAD
	[ "$(cat "$TMP/out")" = "$m:$LIB" ] && ok "LD_PRELOAD=$(cat "$TMP/out")" || fail "LD_PRELOAD=$(cat "$TMP/out")"
	says "$TMP/err" "the directory is dropped, with a message" "dropping $TMP/libkashim.so from LD_PRELOAD: not a regular file"
	bounded 0 "a live libkashim.so already there is kept, not added twice" env LD_PRELOAD="$m $LIB" "$K" run printenv LD_PRELOAD
	[ "$(cat "$TMP/out")" = "$m:$LIB" ] && ok "LD_PRELOAD=$(cat "$TMP/out")" || fail "LD_PRELOAD=$(cat "$TMP/out")"
}

test_dropin_values_quoted_for_systemd() {
	local d=$TMP/we%i\"r\\d$'\n'x\'y\$z
	mkdir -p "$d"
	cp "$LIB" "$d/libkashim.so"
	bounded 0 "dropin --library with % \" \\ newline ' \$ in the path" "$K" dropin --library "$d/libkashim.so" --idle 30s
	[ "$(grep -c '^Environment=' "$TMP/out")" = 2 ] && ok "two Environment= lines, none split" || fail "$(cat "$TMP/out")"
	cp "$TMP/out" "$TMP/dropin.conf"
	bounded 2 "dropin: a value with a newline is refused" "$K" dropin --idle $'30\nExecStartPre=/bin/false'
	[ -s "$TMP/out" ] && fail "wrote: $(cat "$TMP/out")" || ok "nothing written"
	need_cmd systemd-analyze || return
	mkdir -p "$TMP/units/kt.service.d"
	printf '[Unit]\nDescription=kashim test\n[Service]\nExecStart=/bin/true\n' > "$TMP/units/kt.service"
	cp "$TMP/dropin.conf" "$TMP/units/kt.service.d/kashim.conf"
	# verify reads the unit files offline: no running systemd needed.
	(cd "$TMP/units" && SYSTEMD_LOG_LEVEL=debug timeout 60 systemd-analyze verify ./kt.service) > "$TMP/verify" 2>&1
	local rc=$?
	if [ "$rc" -eq 0 ] && WANT_PATH="$d/libkashim.so" "$PY" -c '
import os, sys
text = open(sys.argv[1]).read()
sys.exit(0 if "Environment: LD_PRELOAD=" + os.environ["WANT_PATH"] + "\n" in text and "Environment: KASHIM_IDLE=30s\n" in text else 1)' "$TMP/verify"; then
		ok "systemd-analyze verify reads back the exact path and value"
	else
		fail "verify status $rc: $(grep -iE 'environment|error|warn|kashim' "$TMP/verify" | head -5)"
	fi
}

test_doctor_files_that_are_not_programs() {
	mkfifo "$TMP/fifo"
	chmod +x "$TMP/fifo"
	ln -s loop2 "$TMP/loop1"
	ln -s loop1 "$TMP/loop2"
	: > "$TMP/empty"
	chmod +x "$TMP/empty"
	local f
	for f in "$TMP/fifo" /dev/zero /dev/urandom /proc/self/mem "$TMP" "$TMP/loop1" "$TMP/empty"; do
		bounded 1 "doctor $f" "$K" doctor "$f"
		says "$TMP/err" "$f: says why" "kashim doctor: $f: "
	done
	says "$TMP/err" "an empty file" "empty"
	bounded 1 "doctor: a symlink loop" "$K" doctor "$TMP/loop1"
	says "$TMP/err" "says so" "Too many levels of symbolic links"
	bounded 1 "doctor: a FIFO found in PATH" env PATH="$TMP" "$K" doctor fifo
	says "$TMP/err" "says it is a FIFO" "not a regular file (a FIFO)"
	bounded 126 "run: a FIFO cannot be executed" "$K" run "$TMP/fifo"
}

# A small dynamic program, built here: calls socket() when $2 is "socket".
build_program() {
	if [ "$2" = socket ]; then
		printf '#include <sys/socket.h>\nint main(void) { return socket(AF_INET, SOCK_STREAM, 0) < 0; }\n' > "$TMP/p.c"
	else
		printf 'int main(void) { return 0; }\n' > "$TMP/p.c"
	fi
	cc -o "$1" "$TMP/p.c" "${@:3}" 2> "$TMP/cc.err" || { fail "cc: $(head -3 "$TMP/cc.err")"; return 1; }
}

test_doctor_truncated_and_damaged_elf() {
	build_program "$TMP/dyn" socket || return
	printf 'void _start(void) { for (;;) ; }\n' > "$TMP/st.c"
	cc -static -nostdlib -o "$TMP/static" "$TMP/st.c" || { fail "cc -static"; return; }
	local size
	size=$(stat -c %s "$TMP/dyn")
	python3 "$MANGLE" "$TMP/dyn" "$TMP/t-header" truncate 64
	python3 "$MANGLE" "$TMP/dyn" "$TMP/t-half" truncate $((size / 2))
	python3 "$MANGLE" "$TMP/dyn" "$TMP/t-end" truncate -100
	python3 "$MANGLE" "$TMP/dyn" "$TMP/shoff" shoff-past-eof
	python3 "$MANGLE" "$TMP/static" "$TMP/t-static" truncate $(($(stat -c %s "$TMP/static") - 100))
	head -c 40 "$TMP/dyn" > "$TMP/t-ident"
	chmod +x "$TMP"/t-* "$TMP/shoff"
	local f
	for f in t-ident t-header t-half t-end t-static shoff; do
		bounded 1 "doctor: $f" "$K" doctor "$TMP/$f"
		says "$TMP/out" "$f: cannot tell: truncated" "$TMP/$f: cannot tell: truncated: "
	done
	bounded 125 "run refuses a truncated program" "$K" run "$TMP/t-end"
	says "$TMP/err" "and says why" "cannot tell: truncated"
	python3 "$MANGLE" "$TMP/dyn" "$TMP/phnum" phnum 65535
	python3 "$MANGLE" "$TMP/dyn" "$TMP/interp" interp-no-nul
	python3 "$MANGLE" "$TMP/dyn" "$TMP/c32" class32
	chmod +x "$TMP/phnum" "$TMP/interp" "$TMP/c32"
	bounded 1 "doctor: e_phnum 65535" "$K" doctor "$TMP/phnum"
	says "$TMP/out" "cannot tell, malformed" "cannot tell: not a well-formed ELF program: program headers the kernel would not load"
	bounded 1 "doctor: an interpreter name without its NUL" "$K" doctor "$TMP/interp"
	says "$TMP/out" "cannot tell, malformed" "cannot tell: not a well-formed ELF program"
	bounded 1 "doctor: a 32-bit ELF header" "$K" doctor "$TMP/c32"
	says "$TMP/out" "another word size" "no: built for another architecture or word size"
	# Damage that does not change the answer: still read correctly.
	python3 "$MANGLE" "$TMP/dyn" "$TMP/strtab" strtab-anywhere
	python3 "$MANGLE" "$TMP/dyn" "$TMP/needed" needed-anywhere
	chmod +x "$TMP/strtab" "$TMP/needed"
	for f in strtab needed; do
		bounded 0 "doctor: $f pointing anywhere" "$K" doctor "$TMP/$f"
		says "$TMP/out" "$f: still sees socket()" "and calls socket/connect/accept through libc"
	done
}

test_doctor_bounded_work() {
	need_cmd strace || return
	printf '#include <math.h>\n#include <stdlib.h>\nint main(int c, char **v) { return (int)cos(atof(v[c - 1])); }\n' > "$TMP/m.c"
	cc -o "$TMP/m" "$TMP/m.c" -lm || { fail "cc"; return; }
	python3 "$MANGLE" "$TMP/m" "$TMP/many" many-sections 65535
	python3 "$MANGLE" "$TMP/m" "$TMP/ext" many-sections 70000
	chmod +x "$TMP/many" "$TMP/ext"
	bounded 0 "doctor: 65535 section headers, half of them .dynamic naming libm" "$K" doctor "$TMP/many"
	says "$TMP/out" "the answer" "yes: dynamically linked"
	timeout 60 strace -f -e trace=openat -o "$TMP/trace" "$K" doctor "$TMP/many" > /dev/null 2>&1
	local opens
	opens=$(grep -c 'libm\.so' "$TMP/trace")
	[ "$opens" -le 2 ] && ok "libm opened $opens time(s), not once per section" || fail "libm opened $opens times"
	bounded 1 "doctor: 70000 sections through the extended count" "$K" doctor "$TMP/ext"
	says "$TMP/out" "more than any program has" "more sections than any program has"
	# A 2 GiB file (sparse) that starts as an ELF program.
	cp "$TMP/m" "$TMP/huge" && truncate -s 2G "$TMP/huge" && chmod +x "$TMP/huge"
	bounded 1 "doctor: a 2 GiB file" "$K" doctor "$TMP/huge"
	says "$TMP/out" "cannot tell: too large" "cannot tell: larger than 1 GiB"
}

test_doctor_needed_library_is_a_fifo() {
	# A DT_NEEDED name that leads, from the library directories, to a FIFO.
	mkdir "$TMP/x"
	mkfifo "$TMP/x/fifo"
	local soname
	soname=../../../../../..$TMP/x/fifo
	printf 'int kashim_test_lib(void) { return 0; }\n' > "$TMP/l.c"
	cc -shared -fPIC -Wl,-soname,"$soname" -o "$TMP/libt.so" "$TMP/l.c" || { fail "cc -shared"; return; }
	printf 'int kashim_test_lib(void);\nint main(void) { return kashim_test_lib(); }\n' > "$TMP/p.c"
	cc -o "$TMP/p" "$TMP/p.c" "$TMP/libt.so" || { fail "cc"; return; }
	readelf -d "$TMP/p" | grep -qF "[$soname]" && ok "DT_NEEDED is $soname" || fail "$(readelf -d "$TMP/p" | grep NEEDED)"
	bounded 0 "doctor: DT_NEEDED leads to a FIFO" "$K" doctor "$TMP/p"
	need_root || return
	need_cmd unshare || return
	# The same through a name without a slash, in a library directory of
	# a private mount namespace (a tmpfs over /usr/local/lib there).
	printf 'int kashim_test_lib(void) { return 0; }\n' > "$TMP/l.c"
	cc -shared -fPIC -Wl,-soname,libkashimfifo.so.1 -o "$TMP/libkashimfifo.so.1" "$TMP/l.c" &&
		cc -o "$TMP/q" "$TMP/p.c" "$TMP/libkashimfifo.so.1" || { fail "cc"; return; }
	bounded 0 "doctor: DT_NEEDED libkashimfifo.so.1 is a FIFO in /usr/local/lib" \
		unshare -m sh -c 'mount -t tmpfs none /usr/local/lib && mkfifo /usr/local/lib/libkashimfifo.so.1 && exec "$0" doctor "$1"' "$K" "$TMP/q"
}

test_doctor_scripts() {
	{ printf '#!/bin/sh -x'; head -c 1048576 /dev/zero | tr '\0' y; echo; } > "$TMP/long-arg.sh"
	{ printf '#!'; head -c 1048576 /dev/zero | tr '\0' /; } > "$TMP/long-interp.sh"
	printf '#!/bin/sh' > "$TMP/no-newline.sh"
	printf '#!/usr/bin/env -S %s -u\n' "$PY" > "$TMP/env-s.py"
	printf '#!%s\n' "$TMP/b.sh" > "$TMP/a.sh"
	printf '#!%s\n' "$TMP/a.sh" > "$TMP/b.sh"
	printf '#!\n' > "$TMP/bare.sh"
	chmod +x "$TMP"/*.sh "$TMP/env-s.py"
	bounded 0 "doctor: a 1 MiB #! line whose interpreter fits" "$K" doctor "$TMP/long-arg.sh"
	says "$TMP/out" "judged by /bin/sh" "a script run by /bin/sh: yes"
	bounded 1 "doctor: a 1 MiB #! interpreter name" "$K" doctor "$TMP/long-interp.sh"
	says "$TMP/out" "the kernel would refuse it" "does not end within the 256 bytes the kernel reads"
	bounded 0 "doctor: #! without a newline" "$K" doctor "$TMP/no-newline.sh"
	says "$TMP/out" "judged by /bin/sh" "a script run by /bin/sh: yes"
	bounded 0 "doctor: #!/usr/bin/env -S python3 -u" "$K" doctor "$TMP/env-s.py"
	says "$TMP/out" "follows env -S to python3" "a script run by $PY"
	bounded 1 "doctor: a.sh -> b.sh -> a.sh" "$K" doctor "$TMP/a.sh"
	says "$TMP/out" "says it is a loop" "nested more than 4 deep (a loop?)"
	bounded 1 "doctor: #! and nothing else" "$K" doctor "$TMP/bare.sh"
	says "$TMP/out" "says so" "names no interpreter"
}

# Every path and value the command prints is escaped as the library's
# messages are: a newline in a name cannot forge a line.
test_printed_names_are_escaped() {
	local nl=$'x\nkashim: forged line\e[31m'
	bounded 1 "check --env-file NAME-WITH-NEWLINE" "$K" check --env-file "$TMP/$nl"
	[ "$(wc -l < "$TMP/err")" = 1 ] && ok "one line on stderr" || fail "$(cat -A "$TMP/err" | head -c 300)"
	says "$TMP/err" "the newline and the escape as \\xHH" 'x\x0akashim: forged line\x1b[31m: No such file'
	printf 'nonsense\n' > "$TMP/$nl"
	bounded 1 "check --env-file: a bad line of a file so named" "$K" check --env-file "$TMP/$nl"
	says "$TMP/err" "escaped before :LINE" 'x\x0akashim: forged line\x1b[31m:1: not a KEY=VALUE line'
	local cmd
	for cmd in "doctor $TMP/$nl" "run -- $TMP/$nl" "inspect 1${nl}" "audit --max-bound 5${nl}" "run --idle=5 --frob${nl}" "dropin --idle 5 ${nl}" "frob${nl}"; do
		# shellcheck disable=SC2086 # the words are the arguments; the name is one
		set -f; IFS=' ' read -r -a args <<< "${cmd%%"$nl"*}"; set +f
		args[${#args[@]} - 1]=${args[${#args[@]} - 1]}$nl
		timeout 20 "$K" "${args[@]}" > "$TMP/out" 2> "$TMP/err"
		if grep -aq '^kashim: forged' "$TMP/out" "$TMP/err" || grep -aq $'\e' "$TMP/out" "$TMP/err"; then
			fail "kashim ${cmd%%"$nl"*}...: a forged line or a raw escape: $(cat -A "$TMP/err" "$TMP/out" | head -c 300)"
		elif grep -aqF 'x0akashim: forged line\x1b[31m' "$TMP/out" "$TMP/err"; then
			ok "kashim ${cmd%%"$nl"*}...: the name escaped"
		else
			fail "kashim ${cmd%%"$nl"*}...: the name not shown: $(cat "$TMP/err" "$TMP/out" | head -c 300)"
		fi
	done
}

# LD_PRELOAD=libkashim.so by name: in a setuid program the loader looks
# for it in the system's directories only, where a preload needs the
# setuid bit, and prints an error line; a full path it drops silently.
test_setuid_programs_silent_with_the_full_path() {
	need_root || return
	chmod 755 "$TMP"
	cp /usr/bin/id "$TMP/suid-id" && chmod 4755 "$TMP/suid-id"
	cp "$LIB" "$TMP/libkashim.so" && chmod 644 "$TMP/libkashim.so"
	local nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	LD_PRELOAD=libkashim.so "${nobody[@]}" "$TMP/suid-id" -u > "$TMP/out" 2> "$TMP/err"
	grep -q "ld.so: object 'libkashim.so' from LD_PRELOAD cannot be preloaded" "$TMP/err" &&
		ok "by name: the setuid program prints the loader's error (as the issue says)" ||
		fail "by name, no error: $(cat "$TMP/err")"
	LD_PRELOAD=$TMP/libkashim.so "${nobody[@]}" "$TMP/suid-id" -u > "$TMP/out" 2> "$TMP/err"
	[ ! -s "$TMP/err" ] && [ "$(cat "$TMP/out")" = 0 ] && ok "by full path: silent, and it ran setuid" ||
		fail "by full path: $(cat "$TMP/err" "$TMP/out")"
	# LD_LIBRARY_PATH: the bare name found by the programs that are not
	# setuid, as the package's is in the loader's path
	LD_LIBRARY_PATH=$TMP LD_PRELOAD=libkashim.so timeout 20 "$K" run --library "$TMP/libkashim.so" -- sh -c 'echo "$LD_PRELOAD"; exec "$@"' - \
		"${nobody[@]}" "$TMP/suid-id" -u > "$TMP/out" 2> "$TMP/err"
	if [ "$(head -n 1 "$TMP/out")" = "$TMP/libkashim.so" ] && [ "$(sed -n 2p "$TMP/out")" = 0 ] && ! grep -q ld.so "$TMP/err"; then
		ok "run replaces the bare name by the full path: the setuid program below is silent"
	else
		fail "LD_PRELOAD under run: $(cat "$TMP/out" "$TMP/err" | head -c 300)"
	fi
	LD_PRELOAD=libkashim.so timeout 20 "$K" check > "$TMP/out" 2> "$TMP/err"
	says "$TMP/out" "check says to name the full path" "LD_PRELOAD names libkashim.so without a directory"
}

test_fuzz_the_elf_reader() {
	need_cmd "$CLANG" || return
	"$CLANG" -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all -fsanitize=fuzzer,address,undefined \
		-I"$ROOT" -o "$TMP/fuzz" "$ROOT/tests/fuzz/fuzz_elf.c" "$ROOT/cli/doctor.c" "$ROOT/cli/files.c" "$ROOT/cli/cgroupfs.c" "$ROOT/config.c" 2> "$TMP/build.err" ||
		{ fail "build: $(head -5 "$TMP/build.err")"; return; }
	# -timeout: an input that takes 5 s is a failure (unbounded work).
	fuzz_corpus fuzz_elf "$ROOT/tests/fuzz/corpus_elf" -timeout=5 -max_len=8192 -rss_limit_mb=1024
}

run_tests
