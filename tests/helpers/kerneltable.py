#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks docs/kernels.md's table against what the kernel matrix measured
(tests/t_kernels.sh), and attach --help's oldest kernel against the table.

  kerneltable.py DOC MEASURED HELP

MEASURED: one line per kernel booted, "LABEL FAILURES release=R
respect=kept|force memlock=charged|free".  The table (the one whose first
column is "kernel") has one row per kernel series: its first cell the
series ("6.1"), a cell "all checks pass" (or "fails"), a respect cell
saying "keeps" or "acts as force", a memory cell saying "charged" or "not
charged".  Every row must be measured and every kernel measured must have
its row.  attach --help's oldest kernel ("Needs Linux 5.10 or later") is
the table's first, and the kernel from which it says respect keeps a
program's own settings the oldest whose row says so.  Prints each
difference; exit 1 when there is one.
"""
import re
import sys


def table(doc):
    rows, header = {}, None
    for line in open(doc, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if not cells:
            if header:
                break
            continue
        if header is None:
            if cells[0].lower() == "kernel":
                header = [c.lower() for c in cells]
            continue
        if set(cells[0]) <= set("-: "):
            continue
        rows[cells[0].strip("`* ")] = dict(zip(header, cells))
    return header, rows


def column(header, word):
    return next((h for h in header or [] if word in h), None)


def main(doc, measured_file, help_file):
    problems = []
    header, rows = table(doc)
    if not rows:
        print(f"{doc}: no table whose first column is 'kernel'")
        return 1
    result_col, respect_col, memory_col = column(header, "result"), column(header, "respect"), column(header, "memlock")
    if not (result_col and respect_col and memory_col):
        print(f"{doc}: the table needs result, respect and memlock columns: {header}")
        return 1
    seen = set()
    for line in open(measured_file, encoding="utf-8"):
        parts = line.split()
        if len(parts) < 2:
            continue
        label, failures = parts[0], int(parts[1])
        facts = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
        m = re.match(r"(\d+\.\d+)", facts.get("release", ""))
        if not m:
            problems.append(f"{label}: no release measured")
            continue
        series = m.group(1)
        seen.add(series)
        row = rows.get(series)
        if row is None:
            problems.append(f"{label}: no row for {series}")
            continue
        want = "all checks pass" if failures == 0 else "fails"
        if row[result_col] != want:
            problems.append(f"{series}: result says '{row[result_col]}', measured: {want}")
        want = {"kept": "keeps", "force": "acts as force"}.get(facts.get("respect"), "?")
        if want not in row[respect_col]:
            problems.append(f"{series}: respect says '{row[respect_col]}', measured: {want}")
        want = {"charged": "charged", "free": "not charged"}.get(facts.get("memlock"), "?")
        if not row[memory_col].startswith(want):
            problems.append(f"{series}: memlock says '{row[memory_col]}', measured: {want}")
    for series in rows:
        if series not in seen:
            problems.append(f"{series}: in the table, not measured")
    oldest = min(rows, key=lambda s: tuple(int(x) for x in s.split(".")))
    helptext = open(help_file, encoding="utf-8").read()
    m = re.search(r"Needs Linux (\d+\.\d+) or later", helptext)
    if not m or m.group(1) != oldest:
        problems.append(f"attach --help names {m.group(1) if m else 'no kernel'}, the table's oldest is {oldest}")
    kept = [s for s, row in rows.items() if "keeps" in row[respect_col]]
    first_kept = min(kept, key=lambda s: tuple(int(x) for x in s.split("."))) if kept else None
    m = re.search(r"respect keeps a\s+program's own settings on (\d+\.\d+) and\s+later", helptext)
    if not m or m.group(1) != first_kept:
        problems.append(f"attach --help says respect keeps them from {m.group(1) if m else 'nowhere'}, "
                        f"the table's oldest kernel where it does is {first_kept}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
