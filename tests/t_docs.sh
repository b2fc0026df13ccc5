#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The documentation test: every command README.md and docs/ show is run
# and its shown output compared; every relative link resolves; every docs
# page is linked from the README; the README stays short; man/libkashim.7
# agrees with docs/configuration.md.  The convention is in
# docs/contributing.md ("The documentation test").
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
# saying why, where none can be booted).
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
DOC
out=$(env -u DOCTEST_ONLY TESTS_ROOT=$ROOT python3 $H/doctest.py run "$t/docs/self.md" 2>&1; python3 $H/doctest.py links "$t/docs/self.md" 2>&1)
if grep -q '^ok - docs: .*self.md:5:' <<< "$out" &&
	grep -q '^not ok - docs: .*self.md:17 .*echo wrong: shown right; got wrong' <<< "$out" &&
	grep -Eq '^(ok - docs: .*self.md:12:|skip - docs: .*self.md:12: needs)' <<< "$out" &&
	grep -q 'missing.md does not exist' <<< "$out" && grep -q 'no heading gives #nope' <<< "$out" &&
	! grep -q 'no heading gives #self-test' <<< "$out"; then
	echo "ok - docs: the engine passes a right block, runs a systemd block under systemd as PID 1, and fails a wrong output and two broken links"
else
	echo "not ok - docs: the engine did not tell right from wrong: $(tr '\n' '|' <<< "$out")"
fi

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
