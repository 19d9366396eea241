#!/usr/bin/env python3
"""Check the Markdown docs: every relative link and anchor resolves.

  tests/docs_links.py [FILE.md...]     (default: every tracked *.md)

For each link [text](target) or image ![alt](target) outside code blocks:
  - a target with a scheme (https:, mailto:) is left alone;
  - a path must exist, relative to the file that links to it;
  - an anchor (#name, or path.md#name) must be a heading of that file,
    with GitHub's rule: lower case, punctuation dropped, spaces to '-',
    a repeated heading gets -1, -2, ...
Also, a repository path written as code (`src/core/err.c`, `tests/unit/`)
must exist; an upper-case component (HARNESS, NAME) stands for any name,
and shell globs (`lg_*.c`) must match something. Paths under build/, var/
and cgi-bin/ are made by the build and are not checked.

Prints one line per problem (FILE:LINE: ...) and exits 1 if there is any.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
TOP = ('src', 'include', 'tests', 'conf', 'scripts', 'bench', 'client', 'docs')
LINK = re.compile(r'!?\[(?:[^\]\\]|\\.)*\]\(([^()\s]+)(?:\s+"[^"]*")?\)')
CODE = re.compile(r'`([^`]+)`')
FENCE = re.compile(r'^\s*(```|~~~)')


def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks."""
    fenced = False
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            if not fenced:
                yield n, line.rstrip('\n')


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)        # keeps letters, digits, _, -, space
    return s.replace(' ', '-')


_anchors = {}


def anchors(path):
    if path not in _anchors:
        seen, out = {}, set()
        for _, line in prose_lines(path):
            m = re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
            if not m:
                continue
            base = slug(m.group(2))
            k = seen.get(base, 0)
            seen[base] = k + 1
            out.add(base if k == 0 else '%s-%d' % (base, k))
        _anchors[path] = out
    return _anchors[path]


def code_path_ok(p):
    """A repository path written as code: does it name something?"""
    parts = p.rstrip('/').split('/')
    pat = '/'.join('*' if re.fullmatch(r'[A-Z][A-Z_]*', c) else c for c in parts)
    return bool(glob.glob(os.path.join(ROOT, pat)))


def check(md):
    problems = []
    here = os.path.dirname(md)
    rel = os.path.relpath(md, ROOT)
    for n, line in prose_lines(md):
        # links, outside inline code spans
        for m in LINK.finditer(CODE.sub('', line)):
            target = m.group(1)
            if re.match(r'^[a-z][a-z0-9+.-]*:', target):
                continue
            path, _, frag = target.partition('#')
            dest = os.path.normpath(os.path.join(here, path)) if path else md
            if not os.path.exists(dest):
                problems.append('%s:%d: link to a missing file: %s' % (rel, n, target))
                continue
            if frag and dest.endswith('.md') and frag not in anchors(dest):
                problems.append('%s:%d: no heading for the anchor: %s' % (rel, n, target))
        for m in CODE.finditer(line):
            p = m.group(1).strip()
            first = p.split('/', 1)[0]
            if ('/' in p and first in TOP and not re.search(r'[\s$=<>|]', p)
                    and not code_path_ok(p)):
                problems.append('%s:%d: no such path in the repository: %s' % (rel, n, p))
    return problems


def main(argv):
    files = argv[1:]
    if not files:
        out = subprocess.run(['git', '-C', ROOT, 'ls-files', '*.md'],
                             capture_output=True, text=True, check=True).stdout
        files = [os.path.join(ROOT, f) for f in out.split()]
    problems = []
    for f in files:
        problems += check(os.path.abspath(f))
    for p in problems:
        print(p)
    print('%d files checked, %d problems' % (len(files), len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
