# SPDX-License-Identifier: MIT
# The shipped alert rules (scripts/prometheus/kashim.rules.yml) under
# promtool: valid (check rules), and right by their unit tests
# (tests/rules/kashim.rules.test.yml: each rule fires where it must, with
# the host and unit in its labels, and not where it must not).  The unit
# tests must also be able to fail: each rule weakened in a way an author
# could get wrong (no "for", a condition dropped, a threshold moved) makes
# promtool test rules fail.
. "$(dirname "$0")/lib.sh"

RULES=$ROOT/scripts/prometheus/kashim.rules.yml
UNIT_TESTS=$ROOT/tests/rules/kashim.rules.test.yml

test_rules_valid() {
	need_cmd promtool || return
	if promtool check rules "$RULES" > "$TMP/out" 2>&1; then
		ok "promtool check rules: $(grep -o 'SUCCESS.*' "$TMP/out")"
	else
		fail "promtool check rules: $(tr '\n' ';' < "$TMP/out")"
	fi
}

test_rules_unit_tests() {
	need_cmd promtool || return
	if promtool test rules "$UNIT_TESTS" > "$TMP/out" 2>&1; then
		ok "promtool test rules: every case passes (fires, and does not fire, where it must)"
	else
		fail "promtool test rules: $(head -c 1500 "$TMP/out" | tr '\n' ';')"
	fi
}

# mutant WHAT OLD NEW: the rules with OLD (text that must be in them)
# replaced by NEW fail their unit tests.
mutant() {
	local what=$1 dir=$TMP/mutant
	mkdir -p "$dir/scripts/prometheus" "$dir/tests/rules"
	cp "$UNIT_TESTS" "$dir/tests/rules/"
	if ! OLD=$2 NEW=$3 "$PY" -c '
import os, sys
text = open(sys.argv[1]).read()
if os.environ["OLD"] not in text:
    sys.exit("not in the rules: " + os.environ["OLD"])
open(sys.argv[2], "w").write(text.replace(os.environ["OLD"], os.environ["NEW"], 1))
' "$RULES" "$dir/scripts/prometheus/kashim.rules.yml" 2> "$TMP/err"; then
		fail "$what: $(cat "$TMP/err")"
		return
	fi
	if ! promtool check rules "$dir/scripts/prometheus/kashim.rules.yml" > /dev/null 2>&1; then
		fail "$what: the mutant is not even valid"
	elif promtool test rules "$dir/tests/rules/kashim.rules.test.yml" > "$TMP/out" 2>&1; then
		fail "$what: the unit tests still pass"
	else
		ok "$what: the unit tests fail"
	fi
}

test_rules_unit_tests_can_fail() {
	need_cmd promtool || return
	mutant "KashimUncoveredConnections without its 30m" "        for: 30m
" ""
	mutant "KashimUncoveredConnections by instance only" "sum by (instance, unit)" "sum by (instance)"
	mutant "KashimAuditStale at 50 minutes, not 5" "kashim\\\\.prom\"} > 300" "kashim\\\\.prom\"} > 3000"
	mutant "KashimAuditStale without the scrape error" "          node_textfile_scrape_error == 1
          or
" ""
	mutant "KashimAuditStale for hosts that never had kashim" \
		'present_over_time(node_textfile_mtime_seconds{file=~"(.*/)?kashim\\.prom"}[1d])' 'node_textfile_scrape_error'
	mutant "KashimUncoveredConnections on unknown worst cases (NaN)" \
		'kashim_audit_worst_case_seconds{bound="idle"} == +Inf
            or' 'kashim_audit_worst_case_seconds{bound="idle"} != 0
            or'
	mutant "KashimAttachRefused on any state" 'state="failed"} == 1' '} == 1'
	mutant "KashimAttachRefused on any unit" 'name=~"kashim-attach@.+\\.service", ' ''
}

# The fleet query shown in docs/fleet.md is the one the unit tests
# evaluate (whitespace aside).
test_fleet_query_is_the_tested_one() {
	if "$PY" - "$ROOT/docs/fleet.md" "$UNIT_TESTS" > "$TMP/out" 2>&1 <<-'PY'
	import re, sys
	doc = open(sys.argv[1]).read()
	shown = re.findall(r"^## The fleet query\n.*?^```promql\n(.*?)^```", doc, re.S | re.M)
	tests = open(sys.argv[2]).read()
	tested = re.findall(r"^      - expr: \|\n((?:          .*\n)+)", tests, re.M)
	norm = lambda q: " ".join(q.split())
	assert len(shown) == 1, "no promql block under '## The fleet query'"
	assert norm(shown[0]) in [norm(t) for t in tested], "not in the unit tests: " + norm(shown[0])
	PY
	then ok "the fleet query of docs/fleet.md is evaluated by the rules' unit tests"; else fail "$(tail -n 2 "$TMP/out")"; fi
}

run_tests
