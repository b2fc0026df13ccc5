#!/usr/bin/env python3
"""The deepest stack path from a function, from gcc's -fcallgraph-info=su
output (.ci files): each function's own frame from -fstack-usage, summed
along the call graph.  Functions outside the files read (libc) count 0 and
are listed; a cycle (recursion) is reported, since it has no bound.

usage: stackpath.py FUNCTION FILE.ci...
prints: "<bytes> <f1> <f2> ..." then "# external: ..." """
import re
import sys

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
BYTES = re.compile(r'\\n(\d+) bytes \((static|dynamic,bounded|dynamic)\)')


def short(title):
    return title.rsplit(':', 1)[-1]


def main():
    root, files = sys.argv[1], sys.argv[2:]
    size, calls, unbounded = {}, {}, []
    for path in files:
        text = open(path).read()
        for title, label in NODE.findall(text):
            m = BYTES.search(label)
            if m:
                size[short(title)] = int(m.group(1))
                if m.group(2) == 'dynamic':
                    unbounded.append(short(title))
        for src, dst in EDGE.findall(text):
            calls.setdefault(short(src), set()).add(short(dst))
    external = set()
    memo = {}

    def deepest(fn, stack):
        if fn in stack:
            sys.exit('recursion: ' + ' -> '.join(stack + [fn]))
        if fn not in size:
            external.add(fn)
            return 0, [fn]
        if fn not in memo:
            best = (0, [])
            for callee in sorted(calls.get(fn, ())):
                best = max(best, deepest(callee, stack + [fn]), key=lambda b: b[0])
            memo[fn] = (size[fn] + best[0], [fn] + best[1])
        return memo[fn]

    total, path = deepest(root, [])
    print(total, ' '.join(path))
    print('# external:', ' '.join(sorted(external - {'__stack_chk_fail'})))
    if unbounded:
        print('# unbounded frames:', ' '.join(unbounded))


main()
