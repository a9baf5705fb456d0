#!/usr/bin/env python3
"""Fail CI when the modules of a crate depend on each other in a cycle.

For every crate root of the workspace (members' src/lib.rs, src/main.rs, src/bin/*.rs,
[lib] and [[bin]] paths) it builds the module tree from `mod` declarations (`a.rs`
declares its children in `a/`; simple #[path]; inline `mod x { }` blocks; #[cfg(test)]
modules included), blanks comments and string literals, and collects every path that
starts with `crate::`, `super::` or `self::`, in `use` trees and in code (and a path that
is a whole attribute string, as in `#[serde(with = "crate::value::wei")]`).

A reference from module A to module B (the longest prefix of the path that is a module)
is an edge between the siblings that hold A and B just below their lowest common
ancestor: `crate::store::Db` used in `network::service` is the edge network -> store.
References between a module and its ancestors or descendants are no edges: a child using
its parent's items (`use super::Event`) or a parent re-exporting its child's (`pub use
child::Y`) is the normal shape of a module tree, and would make every parent a "cycle".

In each set of siblings, a strongly connected component of two or more modules is a
cycle: printed with one file:line per edge, so a maintainer knows what to move ("[tests
only]" if all of its references are in #[cfg(test)] modules), and the exit status is 1.
"""
import argparse
import bisect
import glob
import os
import re
import sys
import tomllib
from collections import defaultdict, deque

STRING_START = re.compile(r'(?:[bc]?(r)(#*)|[bc])?"')
CHAR_LIT = re.compile(r"'(?:\\(?:u\{[0-9a-fA-F_]*\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'")
MOD_DECL = re.compile(r'((?:#\s*\[[^\]]*\]\s*)*)(?:pub\s*(?:\([^)]*\))?\s*)?'
                      r'(?<![\w$])mod\s+(?:r#)?(\w+)\s*([;{])')
PATH_ATTR = re.compile(r'\bpath\s*=\s*[bc]?r?#*"')
CFG_TEST = re.compile(r'#\s*\[\s*cfg\s*\(\s*test\s*\)')
USE_STMT = re.compile(r'(?<![\w$])use\s+([^;]*);')
USE_TOKEN = re.compile(r'::|[{},*]|(?:r#)?\w+')
CODE_PATH = re.compile(r'(?<![\w$:])(?:crate|super|self)(?:\s*::\s*(?:r#)?\w+)+')
STRING_PATH = re.compile(r'(?:crate|super|self)(?:::\w+)+')
LEADING = ('crate', 'self', 'super')


def comment_end(text, i):
    """Where the comment that starts at text[i] ends, or None if none starts there."""
    if text.startswith('//', i):
        j = text.find('\n', i)
        return len(text) if j < 0 else j
    if not text.startswith('/*', i):
        return None
    depth, j = 1, i + 2
    while j < len(text) and depth:  # block comments nest
        pair = text[j:j + 2]
        depth += (pair == '/*') - (pair == '*/')
        j += 2 if pair in ('/*', '*/') else 1
    return j


def strip_code(text):
    """Blank comments and literals' contents, keeping offsets and newlines. Also return
    the strings' contents, keyed by the offset of their opening quote."""
    out, strings, i, n = list(text), {}, 0, len(text)

    def blank(a, b):
        out[a:b] = [c if c == '\n' else ' ' for c in text[a:b]]
    while i < n:
        ident_start = i == 0 or not (text[i - 1].isalnum() or text[i - 1] == '_')
        m = STRING_START.match(text, i) if text[i] in 'bcr"' and ident_start else None
        if (j := comment_end(text, i)) is not None:
            blank(i, j)
            i = j
        elif m:
            q = m.end() - 1
            if m.group(1):  # raw string: no escapes
                end = text.find('"' + m.group(2), q + 1)
            else:
                end = q + 1
                while end < n and text[end] != '"':
                    end += 2 if text[end] == '\\' else 1
            end = n if end < 0 else min(end, n)
            strings[q] = text[q + 1:end]
            blank(q + 1, end)
            i = end + 1 + len(m.group(2) or '')
        elif text[i] == "'" and (cm := CHAR_LIT.match(text, i)):
            blank(i + 1, cm.end() - 1)
            i = cm.end()
        else:
            i += 1
    return ''.join(out), strings


def parse_use(tokens, i, prefix):
    """Parse one use tree at tokens[i]; return ([(segments, offset)], next index)."""
    segs = list(prefix)
    i += tokens[i][0] == '::'
    while True:
        tok, off = tokens[i]
        if tok == '{':
            i, found = i + 1, []
            while tokens[i][0] != '}':
                paths, i = parse_use(tokens, i, segs)
                found += paths
                i += tokens[i][0] == ','
            return found, i + 1
        if tok == '*':
            return [(segs, off)], i + 1
        segs.append(tok.removeprefix('r#'))
        i += 1
        if i < len(tokens) and tokens[i][0] == '::':
            i += 1
            continue
        return [(segs, off)], i + 2 * (i < len(tokens) and tokens[i][0] == 'as')


class Crate:
    def __init__(self, name, root_file, repo):
        self.name, self.repo = name, repo
        self.modules = {(): root_file}  # module path -> file that defines it
        self.tests = set()  # modules declared under #[cfg(test)]
        self.edges = defaultdict(list)  # (parent, a, b) -> [(in a test module, (file, line))]
        sources, queue = [], [((), root_file, True)]
        while queue:
            sources += self.load(*queue.pop(), queue)
        for src in sources:
            self.scan(*src)

    def load(self, mpath, fpath, owns_dir, queue):
        try:
            with open(fpath, encoding='utf-8') as f:
                code, strings = strip_code(f.read())
        except OSError as e:
            print(f'warning: {self.name}: module {"::".join(mpath)}: {e}', file=sys.stderr)
            return []
        d = os.path.dirname(fpath)
        base = d if owns_dir else os.path.join(d, os.path.splitext(os.path.basename(fpath))[0])
        found, stack, spans, blocks = list(MOD_DECL.finditer(code)), [], [], []
        opens = {m.end() - 1: m for m in found if m.group(3) == '{'}
        decls = [m for m in found if m.group(3) == ';']
        for i, ch in enumerate(code):
            if ch == '{':
                stack.append(i if i in opens else None)
            elif ch == '}' and stack and (start := stack.pop()) is not None:
                spans.append((start, i))
        for start, end in sorted(spans):  # (start, end, module, directory of its children)
            outer, odir = self.owner(blocks, start, mpath, base)
            m = opens[start]
            blocks.append((start, end, outer + (m.group(2),), os.path.join(odir, m.group(2))))
            self.add_module(outer + (m.group(2),), fpath, m)
        for m in decls:
            outer, odir = self.owner(blocks, m.start(2), mpath, base)
            name, attr = m.group(2), PATH_ATTR.search(m.group(1))
            if attr:
                rel = strings.get(m.start(1) + attr.end() - 1, '')
                target = os.path.join(odir if outer != mpath else d, rel), True
            elif os.path.exists(os.path.join(odir, name + '.rs')):
                target = os.path.join(odir, name + '.rs'), False
            else:
                target = os.path.join(odir, name, 'mod.rs'), True
            self.add_module(outer + (name,), target[0], m)
            queue.append((outer + (name,), *target))
        for off, s in strings.items():  # #[serde(with = "crate::x")] and the like
            attr = code.rfind('#', 0, off)
            if STRING_PATH.fullmatch(s) and attr >= 0 and re.match(r'#!?\s*\[[^\]]*$', code[attr:off]):
                code = code[:off + 1] + s + code[off + 1 + len(s):]
        return [(fpath, mpath, code, blocks)]

    def add_module(self, path, fpath, decl):
        self.modules[path] = fpath
        if CFG_TEST.search(decl.group(1)) or path[:-1] in self.tests:
            self.tests.add(path)

    @staticmethod
    def owner(blocks, offset, mpath, base):
        inner = [b for b in blocks if b[0] < offset < b[1]]
        return (max(inner)[2], max(inner)[3]) if inner else (mpath, base)

    def scan(self, fpath, mpath, code, blocks):
        lines = [0] + [i + 1 for i, c in enumerate(code) if c == '\n']
        refs = []
        for m in USE_STMT.finditer(code):
            tokens = [(t.group(0), m.start(1) + t.start()) for t in USE_TOKEN.finditer(m.group(1))]
            try:
                refs += parse_use(tokens, 0, [])[0] if tokens else []
            except IndexError:
                print(f'warning: {fpath}: cannot parse `use {m.group(1)}`', file=sys.stderr)
        rest = USE_STMT.sub(lambda m: re.sub(r'[^\n]', ' ', m.group(0)), code)
        for m in CODE_PATH.finditer(rest):
            refs.append(([s.strip().removeprefix('r#') for s in m.group(0).split('::')], m.start()))
        for segs, off in refs:
            here = self.owner(blocks, off, mpath, '')[0]
            target = self.resolve(segs, here) if segs and segs[0] in LEADING else None
            if target is not None:
                where = (os.path.relpath(fpath, self.repo), bisect.bisect_right(lines, off))
                self.add_edge(here, target, (here in self.tests, where))

    def resolve(self, segs, here):
        """The module a path names: after crate/self/super, its longest prefix that is one."""
        base = list(here)
        for i, seg in enumerate(segs):
            if seg == 'crate':
                base = []
            elif seg == 'super':
                if not base:
                    return None
                base.pop()
            elif seg != 'self' and (i == 0 or tuple(base + [seg]) not in self.modules):
                break
            elif seg != 'self':
                base.append(seg)
        return tuple(base)

    def add_edge(self, a, b, ref):
        k = 0
        while k < min(len(a), len(b)) and a[k] == b[k]:
            k += 1
        if k < len(a) and k < len(b):  # else: the same module, an ancestor or a descendant
            self.edges[(a[:k], a[k], b[k])].append(ref)

    def show(self, p, a, b):
        refs = sorted(self.edges[(p, a, b)])  # references from non-test code first
        (test, (file, line)), more = refs[0], len(refs) - 1
        return (f'{"::".join(p + (a,))} -> {"::".join(p + (b,))}: {file}:{line}'
                + (f' (+{more} more)' if more else '') + (' [tests only]' if test else ''))


def find_crates(repo):
    with open(os.path.join(repo, 'Cargo.toml'), 'rb') as f:
        ws = tomllib.load(f)
    dirs = (['.'] if 'package' in ws else []) + [
        d for pat in ws.get('workspace', {}).get('members', [])
        for d in sorted(glob.glob(os.path.join(repo, pat)))]
    seen, roots = set(), []
    for d in (os.path.join(repo, d) for d in dirs):
        with open(os.path.join(d, 'Cargo.toml'), 'rb') as f:
            manifest = tomllib.load(f)
        pkg = manifest['package']['name'].replace('-', '_')
        lib = manifest.get('lib', {}).get('path', 'src/lib.rs')
        tag = ' (bin)' if os.path.exists(os.path.join(d, lib)) else ''
        cands = [(pkg, lib)] + [(b.get('name', pkg).replace('-', '_') + tag, b['path'])
                                for b in manifest.get('bin', []) if 'path' in b]
        cands += [(pkg + tag, 'src/main.rs')] + [
            (os.path.basename(p.removesuffix('/main.rs').removesuffix('.rs')).replace('-', '_')
             + ' (bin)', p) for pat in ('src/bin/*.rs', 'src/bin/*/main.rs')
            for p in sorted(glob.glob(os.path.join(d, pat)))]
        for name, path in cands:
            path = os.path.realpath(os.path.join(d, path))
            if os.path.exists(path) and path not in seen:
                seen.add(path)
                roots.append((name, path))
    return roots


def sccs(succ):
    """Tarjan's algorithm, iterative; the components in a stable order."""
    index, low, stack, out = {}, {}, [], []
    for root in sorted(succ):
        work = [] if root in index else [(root, None)]
        while work:
            v, it = work.pop()
            if it is None:
                index[v] = low[v] = len(index)
                stack.append(v)
                it = iter(sorted(succ[v]))
            for w in it:
                if w not in index:
                    work += [(v, it), (w, None)]
                    break
                if w in stack:
                    low[v] = min(low[v], index[w])
            else:
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    out.append(sorted(stack[stack.index(v):]))
                    del stack[stack.index(v):]
    return sorted(out)


def shortest_cycle(v, succ, comp):
    prev, queue = {v: None}, deque([v])
    while queue:
        u = queue.popleft()
        for w in sorted(succ[u]):
            if w == v:
                path = [u]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return path[::-1] + [v]
            if w in comp and w not in prev:
                prev[w] = u
                queue.append(w)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--root', default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help='the workspace root (default: the parent of this script\'s directory)')
    ap.add_argument('--graph', action='store_true', help="print every crate's sibling edges")
    args = ap.parse_args(argv)
    crates = [Crate(name, path, args.root) for name, path in find_crates(args.root)]
    cycles = 0
    for c in crates:
        if args.graph:
            print(f'crate {c.name}: {len(c.modules)} modules, {len(c.edges)} edges')
            for edge in sorted(c.edges):
                print(f'    {c.show(*edge)}')
        succ = defaultdict(lambda: defaultdict(set))
        for p, a, b in c.edges:
            succ[p][a].add(b)
            succ[p].setdefault(b, set())  # every module a node
        for p in sorted(succ):
            for comp in (comp for comp in sccs(succ[p]) if len(comp) > 1):
                shown = set()
                for v in (v for v in comp if not any(v in e for e in shown)):
                    cyc = shortest_cycle(v, succ[p], set(comp))
                    print(f'crate {c.name}: cycle between modules: '
                          + ' -> '.join('::'.join(p + (m,)) for m in cyc))
                    print(''.join(f'    {c.show(p, a, b)}\n' for a, b in zip(cyc, cyc[1:])), end='')
                    shown |= set(zip(cyc, cyc[1:]))
                    cycles += 1
                rest = [(a, b) for a in comp for b in sorted(succ[p][a])
                        if b in comp and (a, b) not in shown]
                if rest:
                    print(f'    other edges inside this cycle of {len(comp)} modules:')
                    print(''.join(f'    {c.show(p, a, b)}\n' for a, b in rest), end='')
    totals = f'{len(crates)} crates ({sum(len(c.modules) for c in crates)} modules, ' \
             f'{sum(len(c.edges) for c in crates)} edges)'
    print(f'module cycles: {cycles or "none"} in {totals}')
    return 1 if cycles else 0


if __name__ == '__main__':
    sys.exit(main())
