#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The documentation test: every command README.md and docs/ show is run
# and its shown output compared; every relative link resolves; every docs
# page is linked from the README; the README stays short; man/libkashim.7
# agrees with docs/configuration.md.  The convention is in
# docs/contributing.md ("The documentation test").
# tests/run: timeout 1800 (docs/containers.md: a Docker Engine a block, and one make deb; 1001 s measured on a loaded machine)
set -u
ROOT=${TESTS_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 2
export TESTS_ROOT=$ROOT
H=tests/helpers
start=$SECONDS
docs=(README.md docs/*.md)

# The engine itself: a scratch document with a shown output that is wrong
# and a link that goes nowhere must fail, a right one must pass, and a
# block marked "systemd" must run with systemd as PID 1 (or be skipped,
# saying why, where none can be booted).  Waiting (the convention's "timeout
# N sh -c 'until ...'"): a server that is slow to listen must still pass
# (docs/operating.md's inspect example, with the server 2 s late), a state
# that never comes must fail as "did not get ready" when its bound passes,
# and a block that relies on what it started in the background without
# waiting, or asks for the old "wait" flag, must fail before it runs.
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir "$t/docs"
cat > "$t/docs/self.md" <<'DOC'
# Self test

[here](#self-test) and [nowhere](missing.md) and [no anchor](#nope)

```console
$ echo one; echo two
one
{...}
```

<!-- doctest: systemd -->
```console
$ cat /proc/1/comm
systemd
```

```console
$ kashim --version | sed 's/[0-9.]*$/X/'
kashim X
$ echo wrong
right
```

```console
$ sh -c 'sleep 2; exec kashim run --idle 30s -- python3 -m http.server 8080' > /dev/null 2>&1 &
$ timeout 60 sh -c 'until ss -Hltn | grep -q :8080; do sleep 0.1; done'
$ python3 -c 'import socket, time; s = socket.create_connection(("127.0.0.1", 8080)); time.sleep(60)' &
$ timeout 60 sh -c 'until ss -Htnp state established "( sport = :8080 )" | grep -q pid=; do sleep 0.1; done'
$ kashim inspect $(pgrep -f 'http.server 8080') | tail -n 1
4    ESTABLISHED  127.0.0.1:8080           127.0.0.1:{...}          on      30s {...}
```

```console
$ sleep 60 &
$ timeout 2 sh -c 'until ss -Hltn | grep -q :8081; do sleep 0.1; done'
$ echo not reached
not reached
```

```console
$ sleep 60 &
$ echo at once
at once
```

<!-- doctest: wait -->
```console
$ echo waits
waits
```

<!-- doctest: file greeting.txt -->
```text
hello file
```

```console
$ cat greeting.txt
hello file
```
DOC
out=$(env -u DOCTEST_ONLY TESTS_ROOT=$ROOT python3 $H/doctest.py run "$t/docs/self.md" 2>&1; python3 $H/doctest.py links "$t/docs/self.md" 2>&1)
if grep -q '^ok - docs: .*self.md:5:' <<< "$out" &&
	grep -q '^not ok - docs: .*self.md:17 .*echo wrong: shown right; got wrong' <<< "$out" &&
	grep -Eq '^(ok - docs: .*self.md:12:|skip - docs: .*self.md:12: needs)' <<< "$out" &&
	grep -q 'missing.md does not exist' <<< "$out" && grep -q 'no heading gives #nope' <<< "$out" &&
	! grep -q 'no heading gives #self-test' <<< "$out" && grep -q '^ok - docs: .*self.md:57: $ cat greeting.txt' <<< "$out"; then
	echo "ok - docs: the engine passes a right block (one with a file its marker wrote), runs a systemd block under systemd as PID 1, and fails a wrong output and two broken links"
else
	echo "not ok - docs: the engine did not tell right from wrong: $(tr '\n' '|' <<< "$out")"
fi
if grep -q '^ok - docs: .*self.md:24:' <<< "$out" &&
	grep -q "^not ok - docs: .*self.md:33 .*: the scene did not get ready: \`ss -Hltn | grep -q :8081\` was not true within 2 s$" <<< "$out" &&
	grep -q "^not ok - docs: .*self.md:40: \`echo at once\` runs right after \`sleep 60 &\` was started in the background, before any wait" <<< "$out" &&
	grep -q "^not ok - docs: marker: .*self.md:46: the doctest flag 'wait' is gone" <<< "$out" &&
	! grep -q '^ok - docs: .*self.md:40:' <<< "$out"; then
	echo "ok - docs: the engine waits for a server slow to listen, fails a state that never comes as not ready within its bound, and fails a block that does not wait"
else
	echo "not ok - docs: the engine did not wait as the convention says: $(tr '\n' '|' <<< "$out")"
fi

# Stopped from outside (tests/run's bound), the engine leaves nothing: no
# scratch directory, no cgroup, no process of the block it was running.
mkdir "$t/tmp" "$t/stop"
cat > "$t/stop/stop.md" <<'DOC'
```console
$ touch "$DOCSELF_STARTED"; sleep 61.5
```
DOC
cgmnt=$(. tests/lib.sh && cgroup2_root)
cgs() { [ -z "$cgmnt" ] || ls -d "$cgmnt"/kashim-doc-* 2> /dev/null; }
before=$(cgs)
env -u DOCTEST_ONLY TMPDIR=$t/tmp DOCSELF_STARTED=$t/started python3 $H/doctest.py run "$t/stop/stop.md" > "$t/stop.out" 2>&1 &
engine=$!
if timeout 60 sh -c "until [ -e '$t/started' ] || ! kill -0 $engine; do sleep 0.1; done" &&
	[ -e "$t/started" ]; then
	kill -TERM "$engine"
	timeout 60 sh -c "while kill -0 $engine 2> /dev/null; do sleep 0.1; done"
	left="$(ls -A "$t/tmp")$(comm -13 <(echo "$before") <(cgs))$(pgrep -f 'sleep 61.5')"
	if kill -0 "$engine" 2> /dev/null; then
		echo "not ok - docs: the engine did not stop within 60 s of SIGTERM"
	elif [ -n "$left" ]; then
		echo "not ok - docs: the engine, stopped, left behind: $(tr '\n' ' ' <<< "$left")"
	else
		echo "ok - docs: the engine, stopped while a block runs, leaves no scratch directory, cgroup or process"
	fi
else
	echo "not ok - docs: the scene did not get ready: the stop test's block did not start within 60 s: $(tr '\n' '|' < "$t/stop.out")"
fi
kill -KILL "$engine" 2> /dev/null
pkill -f 'sleep 61.5'

python3 $H/doctest.py links "${docs[@]}"

missing=""
for f in docs/*.md; do
	grep -q "](${f})" README.md || missing="$missing $f"
done
if [ -z "$missing" ]; then
	echo "ok - docs: every page of docs/ is linked from README.md"
else
	echo "not ok - docs: not linked from README.md:$missing"
fi

size=$(wc -c < README.md)
if [ "$size" -le 12800 ]; then
	echo "ok - docs: README.md is $size bytes (at most 12800)"
else
	echo "not ok - docs: README.md is $size bytes, over 12800: move the depth into docs/"
fi

if why=$(python3 $H/docvars.py --check 2>&1); then
	echo "ok - docs: man/libkashim.7's variables agree with docs/configuration.md"
else
	echo "not ok - docs: $why"
fi

python3 $H/doctest.py run "${docs[@]}"
echo "# t_docs.sh: $((SECONDS - start)) s"
