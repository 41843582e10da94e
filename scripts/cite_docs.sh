#!/usr/bin/env bash
# Point citations of the documents that used to live outside the repository at docs/ (issue 14):
#
#   SPEC §2.3, SPEC 7.3 (also "SPEC" at a line end, "§" on the next)  ->  docs/MODEL.md §2.3, §7.3
#   pitfall 4                                                          ->  MODEL.md pitfall 4
#   ANCHORS.md, ../shared/ANCHORS.md, "(ANCHORS)"                      ->  docs/PERFORMANCE.md
#   ../shared/SPEC.md                                                  ->  docs/MODEL.md
#   ../shared/DESIGN.md                                                ->  docs/ARCHITECTURE.md
#
# over every file git lists (tracked, and untracked but not ignored), except the documents
# themselves (docs/, CONTRIBUTING.md), this script, and copies of external data that must stay
# byte-identical (tests/data/, examples/models/). Section and pitfall numbers are unchanged:
# docs/MODEL.md keeps the old numbering.
#
# A C++ comment line that the longer citation pushes past 100 columns is re-wrapped the way
# clang-format would leave it, touching only what it must: a run of 3+ aligning spaces inside the
# line is narrowed when that is enough; otherwise the overflow moves to the start of the next line
# of the same paragraph (same comment marker, the same or a deeper indent: a list item's hanging
# indent), or onto a new line. Citations, `code spans` and shapes like (M, D) are never split.
# Lines that still exceed 100 columns are listed at the end.
#
# Idempotent: a second run changes nothing.
#
#   bash scripts/cite_docs.sh            rewrite in place, list the files changed
#   bash scripts/cite_docs.sh --check    change nothing; exit 1 when a file would change
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os
import re
import subprocess
import sys

LIMIT = 100
CHECK = "--check" in sys.argv[1:]
SKIP_PREFIXES = ("docs/", "tests/data/", "examples/models/")
SKIP_FILES = {"CONTRIBUTING.md", "scripts/cite_docs.sh"}
CXX = (".hpp", ".cpp", ".cuh", ".cu", ".h", ".cc")

RULES = [
    # "(SPEC" at the end of a comment line, "§5.3)" at the start of the next one.
    (re.compile(r"\bSPEC(\n[ \t]*(?://+|#)?[ \t]*)(?=§)"), r"docs/MODEL.md\1"),
    (re.compile(r"\bSPEC §"), "docs/MODEL.md §"),
    (re.compile(r"\bSPEC (?=\d)"), "docs/MODEL.md §"),
    (re.compile(r"(?<!MODEL\.md )\b([Pp]itfalls?) (?=\d)"), r"MODEL.md \1 "),
    (re.compile(r"(?:\.\./)?(?:shared/)?ANCHORS\.md"), "docs/PERFORMANCE.md"),
    (re.compile(r"\bANCHORS\b"), "docs/PERFORMANCE.md"),
    (re.compile(r"(?:\.\./)?shared/SPEC\.md"), "docs/MODEL.md"),
    (re.compile(r"(?:\.\./)?shared/DESIGN\.md"), "docs/ARCHITECTURE.md"),
]

# Never a place to break a line: the spaces inside a citation, a `code span` or a shape "(M, D)".
PROTECT = [re.compile(r"MODEL\.md (?:§|[Pp]itfalls? \d)"), re.compile(r"`[^`\n]{1,40}`"),
           re.compile(r"\((?:[\w*+/^.-]+, )+[\w*+/^.-]+\)")]

COMMENT = re.compile(r"^([ \t]*)(//+)( *)(.*)$")


def width(s):
    return len(s)  # columns as clang-format counts them: one per code point


def structural(text):
    """A comment line that starts a list item, a table row, a block, or is ASCII art."""
    return (not text or re.match(r"([-*] |\||```|\d+\.\s)", text) is not None or
            re.search(r"\S {3,}\S", text) is not None)


def narrow(line):
    """Narrow the last run of 3+ inner spaces that can absorb the overflow (keep 2)."""
    over = width(line) - LIMIT
    m = COMMENT.match(line)
    start = len(m.group(1)) + len(m.group(2)) + len(m.group(3))
    runs = [r for r in re.finditer(r"(?<=\S) {3,}(?=\S)", line) if r.start() >= start]
    for r in reversed(runs):
        if len(r.group(0)) - over >= 2:
            return line[:r.start()] + " " * (len(r.group(0)) - over) + line[r.end():]
    return None


def protect(s):
    for rx in PROTECT:
        s = rx.sub(lambda m: m.group(0).replace(" ", "\0"), s)
    return s


def unprotect(s):
    return s.replace("\0", " ")


def wrap(lines, i):
    """Make lines[i] (a comment line) fit, moving the overflow forward. Returns changed indices."""
    changed = set()
    while width(lines[i]) > LIMIT:
        m = COMMENT.match(lines[i])
        if not m:
            return changed
        lead, marker, sp, text = m.groups()
        if re.search(r"\S {3,}\S", text):
            n = narrow(lines[i])
            if n is not None:
                lines[i] = n
                changed.add(i)
                return changed
        p = protect(lines[i])
        body = len(lead) + len(marker) + len(sp)
        cut = p.rfind(" ", body + 1, LIMIT + 1)
        while cut > body and p[cut - 1] == " ":
            cut -= 1
        if cut <= body:
            return changed  # one unbreakable word: leave it for a person
        head, rest = unprotect(p[:cut].rstrip()), unprotect(p[cut:].lstrip())
        inner = len(sp)
        nxt = COMMENT.match(lines[i + 1]) if i + 1 < len(lines) else None
        joinable = False
        if nxt and nxt.group(1) == lead and nxt.group(2) == marker and not text.endswith(":"):
            n_inner, n_text = len(nxt.group(3)), nxt.group(4)
            # the same indent, or deeper: the hanging indent of a list item or a labelled line
            joinable = bool(n_text) and not structural(n_text) and n_inner >= inner
        lines[i] = head
        changed.add(i)
        if joinable:
            lines[i + 1] = lead + marker + nxt.group(3) + rest + " " + nxt.group(4)
        else:
            lines.insert(i + 1, lead + marker + sp + rest)
        i += 1
        changed.add(i)
    return changed


def rewrite(path, text):
    new = text
    for rx, rep in RULES:
        new = rx.sub(rep, new)
    if new == text or not path.endswith(CXX):
        return new, []
    old_lines, lines = text.split("\n"), new.split("\n")
    todo = [i for i, (a, b) in enumerate(zip(old_lines, lines)) if a != b]
    for i in reversed(todo):  # bottom up: inserted lines do not move the ones still to do
        if width(lines[i]) > LIMIT:
            wrap(lines, i)
    cites = ("MODEL.md", "PERFORMANCE.md", "ARCHITECTURE.md")
    long = [n + 1 for n, l in enumerate(lines) if width(l) > LIMIT and any(c in l for c in cites)]
    return "\n".join(lines), long


def main():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], check=True,
                         capture_output=True).stdout.decode()
    files = sorted(f for f in out.split("\0") if f)
    changed, leftovers = [], []
    for f in files:
        if f in SKIP_FILES or f.startswith(SKIP_PREFIXES) or not os.path.isfile(f):
            continue
        try:
            with open(f, encoding="utf-8", newline="") as fh:
                text = fh.read()
        except (UnicodeDecodeError, OSError):
            continue  # binary or unreadable: no citations to fix
        if "\0" in text:
            continue
        new, long = rewrite(f, text)
        leftovers += [f"{f}:{n}" for n in long]
        if new != text:
            changed.append(f)
            if not CHECK:
                with open(f, "w", encoding="utf-8", newline="") as fh:
                    fh.write(new)
    for f in changed:
        print(("would change " if CHECK else "changed ") + f)
    for where in leftovers:
        print(f"still over {LIMIT} columns (fix by hand): {where}")
    if CHECK and changed:
        sys.exit(1)


main()
PY
