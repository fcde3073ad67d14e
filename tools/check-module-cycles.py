#!/usr/bin/env python3
"""Find import cycles between sibling Rust modules in every crate of the workspace.

A reference is any path starting with `crate::`, `super::` or `self::` (or, in
2018+ style, with the name of a child module), in `use` trees and in code.
It is resolved to the deepest module along its segments, following a
module's named `use` imports (re-exports; private ones too, as descendants may
name them), so `crate::AppState` with `pub use state::AppState;` in lib.rs
is a reference to module `state`.  A reference from module A to B
where neither is an ancestor of the other is lifted to the two children of
their lowest common ancestor (`crate::error` -> `crate::http::rate_limit`
becomes `error -> http` under `crate`).  Among each set of siblings, every
strongly connected component with more than one module is a cycle.

Parent/child references are allowed: a parent declares and re-exports its
children, and children use their parent's shared items.  That is a tree, not
a cycle between peers.  Inline `mod x { ... }` bodies belong to their file's
module.  Crate roots: src/lib.rs, src/main.rs, src/bin/*.rs, and every file
directly under tests/, benches/ and examples/ (plus their */main.rs).

Usage: check-module-cycles.py [--root PATH] [--self-test]
Exit status: 0 when there are no cycles, 1 when there are.  Never runs cargo.
"""
import argparse
import bisect
import re
import sys
import tempfile
import tomllib
from pathlib import Path

IDENT = r"(?:r#)?[A-Za-z_]\w*"
CHAR_LIT = re.compile(r"'(?:\\(?:u\{[0-9a-fA-F_]*\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'")
RAW_STR = re.compile(r'r(#*)"')
MOD_DECL = re.compile(r"((?:#\s*\[[^\]]*\]\s*)*)(?<![\w$])(?:pub\s*(?:\([^)]*\))?\s*)?mod\s+(%s)\s*;" % IDENT)
INLINE_MOD = re.compile(r"(?<![\w$])mod\s+(%s)\s*\{" % IDENT)
USE_KW = re.compile(r"(?<![\w$#])use\s")
TOKEN = re.compile(r"\$?(?:r#)?\w+|::|\S")
CODE_PATH = re.compile(r"(?<![\w$:])(\$?%s)((?:\s*::\s*%s)+)" % (IDENT, IDENT))


def strip(src):
    """Blank out comments, string and char literals (keeping newlines and offsets)."""
    out, i, n = list(src), 0, len(src)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    def word(ch):  # "" (start of file) is not a word character
        return ch.isalnum() or ch == "_"

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
        elif c == "r" and (m := RAW_STR.match(src, i)) and not word(src[:i].removesuffix("b").removesuffix("c")[-1:]):
            end = src.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
        elif c == "'" and (m := CHAR_LIT.match(src, i)):
            j = m.end()
        else:
            i += 1
            continue
        blank(i, min(j, n))
        i = j
    return "".join(out)


def parse_use_tree(tokens, pos, prefix, out):
    """Expand one use tree at tokens[pos]; append (segments, name, offset) to out; return new pos."""
    segs = list(prefix)
    if tokens[pos][0] == "::":  # `use ::ext::x` names an external crate
        segs.append("::")
        pos += 1
    while True:
        tok, off = tokens[pos]
        if tok == "{":
            pos += 1
            while tokens[pos][0] not in ("}", ";"):
                pos = parse_use_tree(tokens, pos, segs, out)
                if tokens[pos][0] == ",":
                    pos += 1
            return pos + 1 if tokens[pos][0] == "}" else pos
        if tok == "*":
            if segs:
                out.append((segs, None, off))
            return pos + 1
        if not re.fullmatch(r"\$?(?:r#)?\w+", tok):
            return pos
        segs.append(tok.removeprefix("r#"))
        pos += 1
        if tokens[pos][0] == "::":
            pos += 1
            continue
        name = segs[-1]
        if tokens[pos][0] == "as":
            name, pos = tokens[pos + 1][0], pos + 2
        if segs[-1] == "self" and len(segs) > 1:
            segs.pop()
            name = segs[-1] if name == "self" else name
        out.append((segs, name, off))
        return pos


class SourceFile:
    def __init__(self, path, module):
        self.path, self.module = path, module
        self.text = path.read_text(encoding="utf-8", errors="replace")
        self.code = strip(self.text)
        self.lines = [m.start() for m in re.finditer(r"^", self.code, re.M)]
        self.depth, d = [], 0  # brace depth before each offset
        for ch in self.code:
            self.depth.append(d)
            d += (ch == "{") - (ch == "}")
        self.inline = []  # (start, end, name) of inline `mod x { ... }` bodies
        for m in INLINE_MOD.finditer(self.code):
            start, end = m.end() - 1, m.end()
            while end < len(self.code) and self.depth[end] > self.depth[start]:
                end += 1
            self.inline.append((start, end, m.group(1).removeprefix("r#")))

    def line(self, offset):
        return bisect.bisect_right(self.lines, offset)

    def scope(self, offset):
        """The module path in force at offset: the file's module plus enclosing inline modules."""
        return self.module + tuple(n for s, e, n in self.inline if s < offset < e)

    def mod_decls(self):
        for m in MOD_DECL.finditer(self.code):
            if self.depth[m.start(2)] == 0:
                attr = re.search(r'\bpath\s*=\s*"([^"]*)"', self.text[m.start(1):m.end(1)])
                yield m.group(2).removeprefix("r#"), attr and attr.group(1)

    def references(self):
        """Yield (offset, segments, name-if-module-level-import, path text)."""
        code = self.code
        spans = []
        for m in USE_KW.finditer(code):
            end = code.find(";", m.end())
            end = len(code) if end < 0 else end + 1
            spans.append((m.start(), end))
            tokens = [(t.group(), t.start()) for t in TOKEN.finditer(code, m.end(), end)]
            found = []
            parse_use_tree(tokens + [(";", end)] * 3, 0, [], found)
            top = self.depth[m.start()] == 0
            for segs, name, off in found:
                yield off, segs, (name if top else None), "::".join(segs) + ("" if name else "::*")
        for start, end in spans:
            code = code[:start] + " " * (end - start) + code[end:]
        for m in CODE_PATH.finditer(code):
            segs = [s.strip().removeprefix("r#") for s in m.group(0).split("::")]
            yield m.start(), segs, None, "::".join(segs)


class Crate:
    def __init__(self, label, root_file, warn):
        self.label, self.files = label, {}
        todo = [((), root_file, True)]
        while todo:
            module, path, owns_dir = todo.pop()
            if module in self.files:
                continue
            f = self.files[module] = SourceFile(path, module)
            folder = path.parent if owns_dir else path.parent / path.stem
            for name, attr in f.mod_decls():
                options = [(path.parent / attr, True)] if attr else [
                    (folder / f"{name}.rs", False), (folder / name / "mod.rs", True)]
                found = [(p, o) for p, o in options if p.is_file()]
                if found:
                    todo.append((module + (name,), *found[0]))
                else:
                    warn(f"{path}: module `{name}` has no file ({', '.join(str(p) for p, _ in options)})")
        self.exports = {m: {} for m in self.files}
        self.refs = []  # (file, offset, absolute segments, text)
        for f in self.files.values():
            for off, segs, name, text in f.references():
                full = self.absolute(segs, f.scope(off))
                if full is None:
                    continue
                self.refs.append((f, off, full, text))
                if name and name != "_" and f.scope(off) == f.module:
                    self.exports[f.module][name] = full

    def absolute(self, segs, scope):
        """Segments from the crate root, or None for external / unknown paths."""
        first, base, i = segs[0], list(scope), 0
        if first in ("crate", "$crate"):
            return segs[1:]
        if first == "self":
            i = 1
        elif first != "super":
            return base + segs if scope + (first,) in self.files else None
        while i < len(segs) and segs[i] == "super":
            if not base:
                return None
            base.pop()
            i += 1
        return base + segs[i:]

    def resolve(self, segs, hops=0):
        """The module a path names, following re-exports (deepest existing module otherwise)."""
        cur = ()
        for i, seg in enumerate(segs):
            if cur + (seg,) in self.files:
                cur += (seg,)
                continue
            target = self.exports[cur].get(seg)
            if target is not None and hops < 16:
                return self.resolve(target + segs[i + 1:], hops + 1)
            break
        return cur


def tarjan(nodes, edges):
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            sccs.append(sorted(scc))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sccs


def crate_roots(root):
    members = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["members"]
    for pattern in members:
        for member in sorted(root.glob(pattern)):
            label = member.relative_to(root).as_posix()
            roots = [member / "src/lib.rs", member / "src/main.rs"]
            for sub in ("src/bin", "tests", "benches", "examples"):
                roots += sorted((member / sub).glob("*.rs")) + sorted((member / sub).glob("*/main.rs"))
            for path in roots:
                if path.is_file():
                    yield (label if path.name == "lib.rs" and path.parent.name == "src"
                           else f"{label}/{path.relative_to(member).as_posix()}"), path


def analyse(root, warn=lambda msg: print(f"warning: {msg}", file=sys.stderr)):
    """Returns (cycles, edges, module count, crate count).

    A cycle is (label, lca, members, edge lines); an edge is (label, lca, a, b)."""
    cycles, all_edges, modules, crates = [], set(), 0, 0
    for label, root_file in crate_roots(root):
        crate = Crate(label, root_file, warn)
        crates, modules = crates + 1, modules + len(crate.files)
        lifted = {}  # (lca, a, b) -> [count, example]
        for f, off, segs, text in crate.refs:
            src, dst = f.module, crate.resolve(segs)
            k = 0
            while k < min(len(src), len(dst)) and src[k] == dst[k]:
                k += 1
            if k == len(src) or k == len(dst):
                continue  # same module, or one is an ancestor of the other
            key = (src[:k], src[k], dst[k])
            where = f"{f.path.relative_to(root).as_posix()}:{f.line(off)}: {text}"
            lifted.setdefault(key, [0, where])[0] += 1
            all_edges.add((label,) + key)
        groups = {}
        for lca, a, b in lifted:
            groups.setdefault(lca, {}).setdefault(a, set()).add(b)
        for lca, edges in sorted(groups.items()):
            nodes = set(edges) | {b for bs in edges.values() for b in bs}
            for scc in tarjan(nodes, edges):
                if len(scc) > 1:
                    lines = [f"{a} -> {b} ({n} reference{'s' * (n > 1)}), e.g. {where}"
                             for (l, a, b), (n, where) in sorted(lifted.items())
                             if l == lca and a in scc and b in scc]
                    cycles.append((label, lca, scc, lines))
    return cycles, all_edges, modules, crates


def self_test():
    files = {
        "Cargo.toml": '[workspace]\nmembers = ["one"]\n',
        "one/src/lib.rs": "mod a;\nmod b;\nmod c;\npub mod p;\npub use c::Z;\n"
                          "mod tests { use super::b::X; }\n",
        "one/src/a.rs": "use crate::b::X;\nuse crate::{c::{self, Z as Zed}};\npub struct Y;\n",
        "one/src/b.rs": "pub struct X;\nfn f() -> crate::a::Y { crate::a::Y }\n",
        "one/src/c.rs": "//! c never uses crate::a or crate::b\npub struct Z;\n"
                        "fn g<'a>(s: &'a str) -> (&'a str, char, &'static str) {\n"
                        "    (s, '\"', r#\"crate::a::Y \"quoted\"\"#) /* crate::b::X /* nested */ */\n}\n"
                        "const S: &str = \"crate::b::X \\\" crate::a::Y\";\n",
        "one/src/p.rs": "mod q;\npub struct V;\nuse self::q::W;\n",
        "one/src/p/q.rs": "use super::V;\nuse crate::Z;\npub struct W;\n"
                          "mod tests { use super::super::b::X; }\n",  # names crate::p::b, not crate::b
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_text(text)
        warnings = []
        cycles, edges, modules, crates = analyse(Path(tmp), warnings.append)
    # a -> c is a chain, not a cycle; p -> c only exists through lib.rs's `pub use c::Z;`.
    expected = {("one", (), "a", "b"), ("one", (), "b", "a"), ("one", (), "a", "c"), ("one", (), "p", "c")}
    assert edges == expected, edges
    found = [(label, lca, scc) for label, lca, scc, _ in cycles]
    assert found == [("one", (), ["a", "b"])], found
    assert (modules, crates, warnings) == (6, 1, []), (modules, crates, warnings)
    print("module-cycles: self-test passed")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    cycles, _, modules, crates = analyse(args.root.resolve())
    for label, lca, scc, lines in cycles:
        print(f"{label}: {'::'.join(('crate',) + lca)}::{{{', '.join(scc)}}} form a cycle:")
        for line in lines:
            print(f"    {line}")
    if cycles:
        print(f"module-cycles: {len(cycles)} cycle(s) in {modules} modules of {crates} crates")
        return 1
    print(f"module-cycles: no cycles in {modules} modules of {crates} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
