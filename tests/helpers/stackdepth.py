#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The deepest stack each entry point of the library uses, from gcc's
-fcallgraph-info=su files (one .ci per source file): the sum of the frames
along the heaviest call chain inside the given files.  Calls that leave them
(libc, the dynamic loader) count 0 and are named in the output.

usage: stackdepth.py [--cut NAME]... FILE.ci... -- ENTRY...
(--cut: leave NAME's subtree out, e.g. the one-time load path; NAME also
matches gcc's clones of it, NAME.isra.0, NAME.constprop.0)
prints one line per entry: NAME BYTES via CHAIN (+ outside: CALLS).
Recursion has no bound: a cycle is named on stderr and the status is 1."""
import re
import sys


def parse(paths):
    frames, edges = {}, {}
    node = re.compile(r'node: \{ title: "([^"]+)" label: "[^\\]*\\n[^\\]*\\n(\d+) bytes')
    edge = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
    for path in paths:
        for line in open(path):
            m = node.match(line)
            if m:
                frames[m.group(1)] = int(m.group(2))
                continue
            m = edge.match(line)
            if m:
                edges.setdefault(m.group(1), set()).add(m.group(2))
    return frames, edges


def bare(title):
    return title.rsplit(':', 1)[-1]


def main():
    split = sys.argv.index('--')
    args, cut = sys.argv[1:split], set()
    while args and args[0] == '--cut':
        cut.add(args[1])
        args = args[2:]
    frames, edges = parse(args)
    by_name = {}
    for title in frames:
        by_name.setdefault(bare(title), []).append(title)

    def resolve(t):
        if t in frames:
            return t
        # a call to a global function defined in another of the files
        found = [x for x in by_name.get(t, []) if x in frames]
        return found[0] if found else None

    memo = {}
    cycles = []

    def deepest(title, seen=()):
        if title in memo:
            return memo[title]
        best, chain, outside = 0, [], set()
        for t in edges.get(title, ()):
            r = resolve(t)
            if r is not None and (bare(r) in cut or bare(r).split('.')[0] in cut):
                continue
            if r is None:
                outside.add(t)
                continue
            if r in seen or r == title:
                cycles.append(' > '.join(bare(x) for x in seen + (title, r)))
                continue
            d, c, o = deepest(r, seen + (title,))
            outside |= o
            if d > best:
                best, chain = d, c
        memo[title] = (frames[title] + best, [bare(title)] + chain, outside)
        return memo[title]

    for entry in sys.argv[split + 1:]:
        title = resolve(entry)
        if title is None:
            print(entry, 'not found')
            continue
        d, chain, outside = deepest(title)
        outside.discard('__stack_chk_fail')
        outside.discard('__errno_location')
        print(entry, d, 'via', ' > '.join(chain), '(+ outside:', ' '.join(sorted(outside)) + ')')
    for c in cycles:
        print('recursion:', c, file=sys.stderr)
    return 1 if cycles else 0


sys.exit(main())
