#!/usr/bin/env python3
"""Checks the relative links of README.md and docs/*.md.

    python3 tools/check-links.py [FILE.md ...]

Every relative link (inline `[text](target)`, images, and reference
definitions `[label]: target`) must name a file or folder inside the
repository, and a `#fragment` must match a heading of the target Markdown
file (or of the same file for `#fragment` alone), using GitHub's anchor
rules: the heading text, lowercased, without punctuation except `-` and
`_`, spaces turned into `-`, and `-1`, `-2`... appended to repeated
headings. Links into other files may carry GitHub line anchors (`#L10`,
`#L10-L20`). External `http(s):` and `mailto:` links are skipped; code
blocks and code spans are ignored.

Exits 1 naming each broken link as `file:line: target: why`; otherwise
prints a one-line summary. Python 3.11 standard library only.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); text may hold one level of [..].
INLINE = re.compile(
    r"!?\[(?:[^\[\]\\]|\\.|\[[^\[\]]*\])*\]"
    r"\(\s*(<[^<>\n]*>|(?:[^\s()\\]|\\.|\([^\s()]*\))*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
)
DEFINITION = re.compile(r"^ {0,3}\[([^\]]+)\]:\s*(<[^<>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s+[^>]*(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
LINE_ANCHOR = re.compile(r"^L\d+(?:C\d+)?(?:-L\d+(?:C\d+)?)?$")
SKIPPED_SCHEMES = {"http", "https", "mailto"}


def default_files() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    return [path for path in files if path.is_file()]


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def strip_code_spans(line: str) -> str:
    """Replaces code spans with spaces, keeping column positions."""
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)[0] * len(match.group(1))
                continue
            yield number, line
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            if not line.strip()[len(match.group(1)):].strip():
                fence = None


def heading_text(raw: str) -> str:
    """The text GitHub renders for a heading's inline Markdown."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)  # links and images: their text
    text = re.sub(r"!?\[([^\]]*)\]\[[^\]]*\]", r"\1", text)  # reference links
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|__|\*|~~)", "", text)  # emphasis markers (not single _)
    return text.strip()


def slug(text: str) -> str:
    """GitHub's anchor for a heading text."""
    lowered = heading_text(text).lower()
    kept = "".join(ch for ch in lowered if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    found: list[str] = []
    seen: dict[str, int] = {}
    previous: str | None = None
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        headings: list[str] = []
        atx = ATX.match(line)
        setext = SETEXT.match(line)
        if atx:
            headings.append(atx.group(2) or "")
        elif setext and previous is not None and previous.strip() and not ATX.match(previous):
            # A line of "===" or "---" under a paragraph line makes it a heading
            # ("---" under nothing, or under a list item, is a rule: close enough).
            if not previous.lstrip().startswith(("-", "*", "+", ">", "|")):
                headings.append(previous.strip())
        for text in headings:
            base = slug(text)
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.append(base if count == 0 else f"{base}-{count}")
        found += HTML_ANCHOR.findall(line)
        previous = line
    return frozenset(found)


def links(path: Path):
    """(line number, target) of every link in a Markdown file."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        plain = strip_code_spans(line)
        definition = DEFINITION.match(plain)
        if definition and not plain.lstrip().startswith("[^"):
            yield number, definition.group(2).strip("<>")
            continue
        for match in INLINE.finditer(plain):
            target = match.group(1).strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            yield number, target


def check_link(source: Path, target: str) -> str | None:
    """Why `target`, linked from `source`, is broken; None when it resolves."""
    if not target:
        return "empty link target"
    scheme = SCHEME.match(target)
    if scheme:
        return None if scheme.group(1).lower() in SKIPPED_SCHEMES else f"unsupported link scheme {scheme.group(1)}:"
    if target.startswith("//"):
        return None  # protocol-relative: external
    path_part, _, fragment = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    fragment = unquote(fragment)
    if path_part:
        base = ROOT if path_part.startswith("/") else source.parent
        resolved = (base / path_part.lstrip("/")).resolve()
        try:
            resolved.relative_to(ROOT)
        except ValueError:
            return "points outside the repository"
        if not resolved.exists():
            return f"no such file: {rel(resolved)}"
    else:
        resolved = source
    if not fragment:
        return None
    if resolved.is_dir():
        return "a folder has no anchors"
    if resolved.suffix.lower() not in {".md", ".markdown"}:
        if LINE_ANCHOR.match(fragment):
            return None
        return f"#{fragment}: only line anchors (#L10) can point into {rel(resolved)}"
    known = anchors(resolved)
    if fragment in known:
        return None
    hint = ""
    near = [anchor for anchor in known if anchor.lower() == fragment.lower()]
    if near:
        hint = f" (did you mean #{near[0]}?)"
    return f"no heading with anchor #{fragment} in {rel(resolved)}{hint}"


def main(argv: list[str]) -> int:
    files = [Path(arg).resolve() for arg in argv] if argv else default_files()
    broken: list[str] = []
    checked = skipped = 0
    for path in files:
        if not path.is_file():
            broken.append(f"{rel(path)}: no such file")
            continue
        for number, target in links(path):
            scheme = SCHEME.match(target)
            if (scheme and scheme.group(1).lower() in SKIPPED_SCHEMES) or target.startswith("//"):
                skipped += 1
                continue
            checked += 1
            why = check_link(path, target)
            if why:
                broken.append(f"{rel(path)}:{number}: {target}: {why}")
    if broken:
        for line in broken:
            print(line, file=sys.stderr)
        print(f"check-links: {len(broken)} broken link(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    print(
        f"check-links: {checked} relative link(s) in {len(files)} file(s) resolve "
        f"({skipped} external skipped)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
