#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The documentation test's engine (tests/t_docs.sh; the convention is in
docs/contributing.md, "The documentation test").

  doctest.py run FILE...    run every ```sh and ```console block of FILEs
  doctest.py links FILE...  check every relative link and #anchor
  doctest.py match EXPECTED GOT   (used by the generated scripts)

Prints ok / not ok / skip lines for tests/run.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("TESTS_ROOT") or os.path.dirname(os.path.dirname(HERE))
DOCNS = os.path.join(HERE, "docns.sh")
DOCSYSTEMD = os.path.join(HERE, "docsystemd.sh")
FLAGS = {"root", "tree", "skip", "systemd", "docker"}
BLOCK_SECONDS = int(os.environ.get("DOCTEST_BLOCK_SECONDS", "240"))
# The one way a block waits for a state (a listener, a connection, a
# process in a cgroup): a command a reader can paste, bounded by timeout(1).
# The engine fails the block with "the scene did not get ready" when it
# times out, instead of letting the next command's output mismatch.
WAIT_RE = re.compile(r"^timeout (\d+) sh -c 'until ([^']+); do sleep [0-9.]+; done'$")
WAIT_FORM = "timeout SECONDS sh -c 'until CONDITION; do sleep 0.1; done'"
# A command that only starts something in the background ("... &", not
# "&&") and one that only keeps its pid ("pid=$!").
BACKGROUND_RE = re.compile(r"(?<![&|>])&\s*$")
KEEP_PID_RE = re.compile(r"^\w+=\$!$")


class Block:
    def __init__(self, path, line, lang, body, flags, reason, setup):
        self.path, self.line, self.lang, self.body = path, line, lang, body
        self.flags, self.reason, self.setup = flags, reason, setup
        self.files = []  # (name, lines) that "file NAME" markers gave it

    @property
    def name(self):
        return "%s:%d" % (os.path.relpath(self.path, ROOT), self.line)


def parse(path):
    """The fenced blocks of PATH with their doctest markers, and the
    marker mistakes found (a marker before no block, an unknown flag, a
    transcript in a block that is not ```console)."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, errors = [], []
    marker = None  # (line, flags, reason, setup) waiting for its block
    files = []  # (name, lines) of "file NAME" blocks waiting for a run block
    i = 0
    while i < len(lines):
        ln = lines[i]
        m = re.match(r"^<!-- doctest:(.*)$", ln)
        if m:
            start = i + 1
            text = m.group(1)
            head, _, tail = text.partition("-->")
            setup = []
            if not _:
                i += 1
                while i < len(lines) and "-->" not in lines[i]:
                    setup.append(lines[i])
                    i += 1
                if i == len(lines):
                    errors.append("%s:%d: doctest marker never closed" % (path, start))
                    break
            words = head.split()
            flags, reason = set(), ""
            for j, w in enumerate(words):
                w = w.rstrip(",")
                if w == "skip":
                    flags.add("skip")
                    reason = " ".join(words[j + 1:])
                    break
                if w == "file":
                    flags.add("file")
                    reason = " ".join(words[j + 1:])
                    if not re.match(r"^[\w.-]+$", reason):
                        errors.append("%s:%d: doctest: file needs one plain file name, not %r"
                                      % (path, start, reason))
                    break
                if w == "wait":
                    errors.append("%s:%d: the doctest flag 'wait' is gone (re-running a command "
                                  "until its output matched hid races): wait for the state in "
                                  "the block with %s" % (path, start, WAIT_FORM))
                elif w not in FLAGS:
                    errors.append("%s:%d: unknown doctest flag %r" % (path, start, w))
                flags.add(w)
            if "skip" in flags and not reason:
                errors.append("%s:%d: doctest: skip without a reason" % (path, start))
            marker = (start, flags, reason, setup)
            i += 1
            continue
        m = re.match(r"^(`{3,})\s*([\w+-]*)", ln)
        if m:
            fence, lang, start = m.group(1), m.group(2), i + 1
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(fence):
                body.append(lines[i])
                i += 1
            i += 1
            if lang in ("sh", "console"):
                flags, reason, setup = set(), "", []
                if marker:
                    _, flags, reason, setup = marker
                if "file" in flags:
                    errors.append("%s:%d: doctest: file is for a block that is not run (```%s is)"
                                  % (path, start, lang))
                blocks.append(Block(path, start, lang, body, flags, reason, setup))
                blocks[-1].files, files = files, []
            elif marker and "file" in marker[1]:
                files.append((marker[2], body))
            else:
                if marker:
                    errors.append("%s:%d: doctest marker before a ```%s block (only sh and console "
                                  "blocks are run)" % (path, marker[0], lang))
                if any(b.startswith("$ ") for b in body):
                    errors.append("%s:%d: a transcript ($ lines) in a ```%s block: make it ```console"
                                  % (path, start, lang or ""))
            marker = None
            continue
        if marker and ln.strip():
            errors.append("%s:%d: doctest marker not followed by a block" % (path, marker[0]))
            marker = None
        i += 1
    if files:
        errors.append("%s: doctest: file %s comes before no block that is run" % (path, files[0][0]))
    return blocks, errors


def transcript(body):
    """(command, expected output lines) pairs of a console block; a
    command line ending in a backslash continues on the next."""
    items, cmd = [], None
    it = iter(body)
    for ln in it:
        if ln.startswith("$ "):
            c = ln[2:]
            while c.endswith("\\"):
                c = c + "\n" + next(it, "")
            cmd = [c, []]
            items.append(cmd)
        elif cmd is None:
            if ln.strip():
                raise ValueError("output before the first $ command: %r" % ln)
        else:
            cmd[1].append(ln)
    return items


def norm(line):
    return re.sub(r"\s+", " ", line.strip())


def line_re(line):
    parts = norm(line).split("{...}")
    return re.compile("^" + ".*".join(re.escape(p) for p in parts) + "$")


def matches(expected, got):
    """EXPECTED lines (with {...} within a line, and ... lines for any
    number of lines) against GOT lines; blank lines at the ends ignored."""
    def trim(xs):
        xs = [norm(x) for x in xs]
        while xs and not xs[-1]:
            xs.pop()
        while xs and not xs[0]:
            xs.pop(0)
        return xs
    exp, out = trim(expected), trim(got)
    pats = [None if e == "..." else line_re(e) for e in exp]
    memo = {}

    def go(i, j):
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(pats):
            r = j == len(out)
        elif pats[i] is None:
            r = any(go(i + 1, k) for k in range(j, len(out) + 1))
        else:
            r = j < len(out) and bool(pats[i].match(out[j])) and go(i + 1, j + 1)
        memo[key] = r
        return r
    return go(0, 0)


def q(s):
    return "'" + s.replace("'", "'\\''") + "'"


def commands(block):
    """The commands BLOCK runs, in order: its hidden setup lines, then its
    lines (```sh, a trailing backslash continuing a line) or its $ commands
    (```console)."""
    def joined(lines):
        out, cur = [], None
        for ln in lines:
            cur = ln if cur is None else cur + "\n" + ln
            if not cur.endswith("\\"):
                out.append(cur)
                cur = None
        if cur is not None:
            out.append(cur)
        return out
    body = joined(block.body) if block.lang == "sh" else [c for c, _ in transcript(block.body)]
    return joined(block.setup) + body


def unwaited(block):
    """Why BLOCK relies on something it started in the background without
    waiting for its state first, or None: after a command that ends in
    "&", the next command (other than another start or "pid=$!") must be
    the wait idiom."""
    started = None
    for c in commands(block):
        c = c.strip()
        if not c or c.startswith("#"):
            continue
        if WAIT_RE.match(c):
            started = None
        elif BACKGROUND_RE.search(c):
            started = started or c
        elif KEEP_PID_RE.match(c):
            continue
        elif started:
            return ("`%s` runs right after `%s` was started in the background, before any wait "
                    "for its state: wait for it with %s" % (c[:80], started[:80], WAIT_FORM))
    return None


def not_ready(cmd, work):
    """For the wait idiom CMD: what to append so that a timeout records why
    the state did not come (in WORK/notready) and stops the block; else
    nothing."""
    m = WAIT_RE.match(cmd.strip())
    if not m:
        return ""
    why = "`%s` was not true within %s s" % (m.group(2), m.group(1))
    return " || { echo %s > %s; exit 1; }" % (q(why), q(os.path.join(work, "notready")))


def script_for(block, work):
    """The bash script that runs BLOCK, and for console blocks writes each
    command's output to WORK/N and stops at the first mismatch.  A wait
    that times out stops the block and leaves WORK/notready."""
    out = ["set -o pipefail"]
    for name, lines in block.files:
        with open(os.path.join(work, "file." + name), "w") as f:
            f.write("\n".join(lines) + "\n")
        out.append("cp %s %s" % (q(os.path.join(work, "file." + name)), q(name)))
    out += [c + not_ready(c, work) for c in block.setup]
    if block.lang == "sh":
        out.append("set -e")
        out += [c + not_ready(c, work) for c in block.body]
        return "\n".join(out) + "\n"
    me = os.path.abspath(__file__)
    for n, (cmd, exp) in enumerate(transcript(block.body)):
        with open(os.path.join(work, "%d.exp" % n), "w") as f:
            f.write("\n".join(exp) + "\n")
        f_out, f_exp = q(os.path.join(work, str(n))), q(os.path.join(work, "%d.exp" % n))
        out.append("{ %s\n} > %s 2>&1 < /dev/null%s" % (cmd, f_out, not_ready(cmd, work)))
        out.append("python3 %s match %s %s || { echo %d > %s; exit 1; }"
                   % (q(me), f_exp, f_out, n, q(os.path.join(work, "failed"))))
    return "\n".join(out) + "\n"


_tree = None


def tree_copy():
    """A built copy of the source tree (tracked and new files), made once."""
    global _tree
    if _tree:
        return _tree
    _tree = tempfile.mkdtemp(prefix="kashim-doctree.")
    try:
        git = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True)
    except FileNotFoundError:
        git = None
    if git and git.returncode == 0:
        files = git.stdout
    else:  # no git (a tarball): every file but the build's outputs
        subprocess.run(["cp", "-a", ROOT + "/.", _tree], check=True)
        subprocess.run(["make", "-s", "-C", _tree, "clean"], capture_output=True)
        subprocess.run(["make", "-s", "-C", _tree], capture_output=True)
        return _tree
    p1 = subprocess.Popen(["tar", "-C", ROOT, "--null", "-T", "-", "-cf", "-"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p2 = subprocess.Popen(["tar", "-C", _tree, "-xf", "-"], stdin=p1.stdout)
    p1.stdin.write(files)
    p1.stdin.close()
    p1.stdout.close()
    p2.wait()
    p1.wait()
    subprocess.run(["make", "-s", "-C", _tree], capture_output=True)
    return _tree


_stage = None


def install_stage():
    """A directory holding `make install PREFIX=/usr/local` of this tree,
    made once: every block's /usr/local is copied from it (docns.sh)."""
    global _stage
    if _stage is None:
        _stage = tempfile.mkdtemp(prefix="kashim-docstage.")
        p = subprocess.run(["make", "-s", "-C", ROOT, "install", "PREFIX=/usr/local",
                            "DESTDIR=" + _stage], capture_output=True)
        if p.returncode:
            failed, _stage = _stage, None  # the next block tries again, and says so too
            subprocess.run(["rm", "-rf", failed])
            raise RuntimeError("make install DESTDIR=%s failed: %s"
                               % (failed, oneline((p.stdout + p.stderr).decode(errors="replace"))))
    return _stage


_deb = None


def docker_materials():
    """Kashim's .deb (make deb in the tree's copy) and the base root the
    Docker Engine imports (tests/helpers/fleetbase.sh, cached on this
    machine), made once for every "docker" block: inside a block, /var is
    an overlay that would swallow the base."""
    global _deb
    if _deb is None:
        tree = tree_copy()
        p = subprocess.run(["make", "-s", "-C", tree, "deb"], capture_output=True)
        lines = p.stdout.decode(errors="replace").strip().split("\n")
        if p.returncode or not os.path.isfile(lines[-1]):
            raise RuntimeError("make deb failed: %s" % oneline((p.stdout + p.stderr).decode(errors="replace")))
        p = subprocess.run(["bash", os.path.join(HERE, "fleetbase.sh")], capture_output=True)
        if p.returncode:
            raise RuntimeError("the base root for docker import: tests/helpers/fleetbase.sh failed: %s"
                               % oneline((p.stdout + p.stderr).decode(errors="replace")))
        _deb = lines[-1]
    return _deb


def remove_copies():
    for d in (_tree, _stage):
        if d:
            subprocess.run(["rm", "-rf", d])


class Skipped(Exception):
    pass


def run_block(block):
    """None when BLOCK ran as shown, else why not; raises Skipped when a
    "systemd" block cannot be booted here."""
    work = tempfile.mkdtemp(prefix="kashim-docblk.")
    try:
        path = os.path.join(work, "block.sh")
        with open(path, "w") as f:
            f.write(script_for(block, work))
        env = dict(os.environ)
        for k in list(env):
            if k.startswith(("KASHIM", "DOCNS_", "DD_", "KEEP")) or k in ("LD_PRELOAD", "DOC_CWD"):
                del env[k]
        env["TESTS_ROOT"] = ROOT
        try:
            stage = install_stage()
        except RuntimeError as ex:
            return str(ex)
        if "tree" in block.flags:
            env["DOC_CWD"] = tree_copy()
        if "docker" in block.flags:
            try:
                env["DOCNS_DEB"] = os.environ.get("DOCTEST_DEB") or docker_materials()
            except RuntimeError as ex:
                return str(ex)
            env["DOCNS_DOCKER"] = "1"
        # "systemd": under a real systemd as PID 1, in a container booted
        # for the block (tests/helpers/docsystemd.sh); else in private
        # namespaces of this host (tests/helpers/docns.sh).
        cmd = ["bash", DOCSYSTEMD, work, ROOT] if "systemd" in block.flags else \
            ["bash", DOCNS, path, stage]
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out = p.communicate(timeout=BLOCK_SECONDS)[0]
            rc, text = p.returncode, out.decode(errors="replace")
        except subprocess.TimeoutExpired:
            stop(p)
            return "did not finish within %d s" % BLOCK_SECONDS
        except BaseException:  # stopped from outside
            stop(p)
            raise
        if "systemd" in block.flags and rc == 77:
            raise Skipped(oneline(text))
        if "systemd" in block.flags and rc == 98:
            return "could not run under systemd: %s" % oneline(text[-600:])
        if block.lang == "sh":
            if rc != 0:
                return "exited with status %d: %s" % (rc, oneline(text[-600:]))
            return None
        notready = os.path.join(work, "notready")
        if os.path.exists(notready):
            return "the scene did not get ready: %s" % open(notready, errors="replace").read().strip()
        failed = os.path.join(work, "failed")
        if os.path.exists(failed):
            n = int(open(failed).read())
            cmd, exp = transcript(block.body)[n]
            got = open(os.path.join(work, str(n)), errors="replace").read()
            return "$ %s: shown %s; got %s" % (cmd, oneline("\n".join(exp)) or "(nothing)",
                                                 oneline(got) or "(nothing)")
        if rc != 0:
            return "the block's shell exited with status %d: %s" % (rc, oneline(text[-600:]))
        return None
    finally:
        subprocess.run(["rm", "-rf", work])


def stop(p):
    """Ends a block's runner the way it cleans up after itself (its EXIT
    trap removes its cgroup and scratch directory), then for sure."""
    p.terminate()
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def oneline(s):
    s = " | ".join(x.rstrip() for x in s.strip().split("\n"))
    return s if len(s) <= 700 else s[:700] + "..."


def cmd_run(files):
    is_root = os.geteuid() == 0
    counts = {"run": 0, "skip": 0}
    for path in files:
        blocks, errors = parse(path)
        for e in errors:
            print("not ok - docs: marker: %s" % os.path.relpath(e, ROOT) if e.startswith("/")
                  else "not ok - docs: marker: %s" % e)
        for b in blocks:
            only = os.environ.get("DOCTEST_ONLY")
            if only and not b.name.startswith(only):
                continue
            if "skip" in b.flags:
                print("# %s: not run, as its marker says: %s" % (b.name, b.reason))
                counts["skip"] += 1
                continue
            try:
                why = unwaited(b)
            except ValueError as ex:
                why = str(ex)
            if why:
                print("not ok - docs: %s: %s" % (b.name, why))
                continue
            if ("root" in b.flags or "systemd" in b.flags or "docker" in b.flags) and not is_root:
                print("skip - docs: %s: needs root" % b.name)
                continue
            try:
                why = run_block(b)
            except Skipped as ex:
                print("skip - docs: %s: needs a real systemd: %s" % (b.name, ex))
                continue
            counts["run"] += 1
            first = next((x for x in b.body if x.strip()), "")
            if why:
                print("not ok - docs: %s (%s): %s" % (b.name, first.strip()[:60], why))
            else:
                print("ok - docs: %s: %s" % (b.name, first.strip()[:70]))
        sys.stdout.flush()
    print("# %d blocks run, %d not run by their markers" % (counts["run"], counts["skip"]))


def slug(heading):
    """GitHub's anchor for a heading."""
    h = heading.strip().lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def prose_lines(path):
    """(line number, line) of every line of path outside fenced code."""
    fence = None
    for no, ln in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"^(`{3,})", ln)
        if m:
            fence = None if fence and ln.startswith(fence) else (fence or m.group(1))
            continue
        if not fence:
            yield no, ln


def anchors(path):
    seen, out = {}, set()
    for _, ln in prose_lines(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", ln)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
    return out


def links_of(path):
    """(line, target) of every Markdown link outside code."""
    for no, ln in prose_lines(path):
        ln = re.sub(r"`[^`]*`", "", ln)
        for m in re.finditer(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", ln):
            yield no, m.group(1)
        for m in re.finditer(r"^\[[^\]]+\]:\s*(\S+)", ln):
            yield no, m.group(1)


def cmd_links(files):
    bad = 0
    total = 0
    for path in files:
        for no, target in links_of(path):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # http:, https:, mailto:
            total += 1
            where = "%s:%d" % (os.path.relpath(path, ROOT), no)
            file_part, _, anchor = target.partition("#")
            dest = path if not file_part else os.path.normpath(
                os.path.join(os.path.dirname(path), file_part))
            if not os.path.exists(dest):
                print("not ok - docs: link %s: %s does not exist" % (where, target))
                bad += 1
                continue
            if anchor:
                if not dest.endswith(".md"):
                    print("not ok - docs: link %s: %s: an anchor into a file that is not Markdown"
                          % (where, target))
                    bad += 1
                elif anchor not in anchors(dest):
                    print("not ok - docs: link %s: no heading gives #%s in %s"
                          % (where, anchor, os.path.relpath(dest, ROOT)))
                    bad += 1
    if not bad:
        print("ok - docs: %d relative links and anchors resolve" % total)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    what, args = sys.argv[1], sys.argv[2:]
    if what == "match":
        exp = open(args[0], errors="replace").read().split("\n")
        got = open(args[1], errors="replace").read().split("\n")
        sys.exit(0 if matches(exp, got) else 1)
    if what == "run":
        # Stopped from outside (tests/run's bound sends SIGTERM), the run
        # still removes what it made: the block in hand (its finally, which
        # also kills its shell) and the copies.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            cmd_run([os.path.abspath(a) for a in args])
        finally:
            remove_copies()
    elif what == "links":
        cmd_links([os.path.abspath(a) for a in args])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
