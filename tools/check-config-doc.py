#!/usr/bin/env python3
"""Checks that docs/configuration.md documents config/config.template.yaml.

    python3 tools/check-config-doc.py

The template is the source of every default (the services load it at
start), and each of its keys names its environment variable in the comment
above it (`env: NAME`). docs/configuration.md has one table row per
setting: | `section.key` | `ENV_NAME` | `default` | meaning |, in tables
whose header starts with "| Key | Environment variable | Default |".

Fails, printing each disagreement, when a template setting has no row, a
row names a key the template lacks, or a row's variable or default differs
from the template's. Python 3.11 standard library only.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "config" / "config.template.yaml"
DOC = ROOT / "docs" / "configuration.md"

KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s+(?P<value>.*?))?\s*$")
ENV_NAME = re.compile(r"\benv:\s*([A-Z][A-Z0-9_]*)")
HEADER = re.compile(r"^\|\s*Key\s*\|\s*Environment variable\s*\|\s*Default\s*\|", re.IGNORECASE)
SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
CODE = re.compile(r"^`([^`]*)`$")
EMPTY_WORDS = {"(empty)", "empty", "*(empty)*", "_(empty)_"}


@dataclass
class Setting:
    key: str
    env: str | None
    default: str
    line: int


def scalar(raw: str) -> str:
    """A YAML scalar as text: quotes removed, escapes of double quotes kept simple."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        inner = raw[1:-1]
        return inner.replace("''", "'") if raw[0] == "'" else inner.replace('\\"', '"')
    return raw


def parse_template(path: Path) -> tuple[dict[str, Setting], list[str]]:
    """Leaf settings by dotted key, and problems with the template itself."""
    settings: dict[str, Setting] = {}
    problems: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, section name)
    comments: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(stripped[1:])
            continue
        match = KEY_LINE.match(line)
        if not match:
            problems.append(f"{path.relative_to(ROOT)}:{number}: cannot read this line: {line!r}")
            comments = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([name for _, name in stack] + [match["key"]])
        value = match["value"]
        names = ENV_NAME.findall(" ".join(comments))
        comments = []
        if value is None or value == "":
            if names:
                problems.append(
                    f"{path.relative_to(ROOT)}:{number}: section `{key}` has an env comment "
                    f"({', '.join(names)}); env names belong to settings"
                )
            stack.append((indent, match["key"]))
            continue
        if len(names) > 1:
            problems.append(
                f"{path.relative_to(ROOT)}:{number}: `{key}` has several env comments: {', '.join(names)}"
            )
        if key in settings:
            problems.append(f"{path.relative_to(ROOT)}:{number}: `{key}` appears twice")
        settings[key] = Setting(key, names[-1] if names else None, scalar(value), number)
    return settings, problems


def cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    # Split on pipes that are not escaped (\|) and not inside a code span.
    out, current, in_code = [], [], False
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            current.append("|")
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    out.append("".join(current).strip())
    return out


def code_or_none(cell: str) -> str | None:
    match = CODE.match(cell.strip())
    return match[1] if match else None


def parse_doc(path: Path) -> tuple[dict[str, Setting], list[str]]:
    rows: dict[str, Setting] = {}
    problems: list[str] = []
    rel = path.relative_to(ROOT)
    in_table = False
    in_fence = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
            in_table = False
            continue
        if in_fence:
            continue
        if HEADER.match(stripped):
            in_table = True
            continue
        if not in_table:
            continue
        if not stripped.startswith("|"):
            in_table = False
            continue
        if SEPARATOR.match(stripped):
            continue
        row = cells(stripped)
        if len(row) < 3:
            problems.append(f"{rel}:{number}: a settings row needs key, variable and default: {stripped}")
            continue
        key = code_or_none(row[0])
        if key is None:
            problems.append(f"{rel}:{number}: the key must be one code span like `server.port`, not {row[0]!r}")
            continue
        if row[1] in {"", "-", "—", "–"}:
            env = None
        else:
            env = code_or_none(row[1])
            if env is None:
                problems.append(
                    f"{rel}:{number}: `{key}`: the variable must be one code span like `SERVER_PORT` "
                    f"(or — for none), not {row[1]!r}"
                )
                continue
        default_cell = row[2].strip()
        if default_cell.lower() in EMPTY_WORDS:
            default = ""
        else:
            default = code_or_none(default_cell)
            if default is None:
                problems.append(
                    f"{rel}:{number}: `{key}`: the default must be one code span or (empty), not {default_cell!r}"
                )
                continue
        if key in rows:
            problems.append(f"{rel}:{number}: `{key}` has a second row (first on line {rows[key].line})")
            continue
        rows[key] = Setting(key, env, default, number)
    return rows, problems


def show(value: str) -> str:
    return "(empty)" if value == "" else f"`{value}`"


def main() -> int:
    template, problems = parse_template(TEMPLATE)
    doc, doc_problems = parse_doc(DOC)
    problems += doc_problems
    t_rel, d_rel = TEMPLATE.relative_to(ROOT), DOC.relative_to(ROOT)
    if not template:
        problems.append(f"{t_rel}: no settings found")
    if not doc and not doc_problems:
        problems.append(
            f"{d_rel}: no settings table found (a header row '| Key | Environment variable | Default | ... |')"
        )

    env_owner = {s.env: s.key for s in template.values() if s.env}
    for key, setting in template.items():
        row = doc.get(key)
        if row is None:
            env = f"env {setting.env}, " if setting.env else ""
            problems.append(
                f"{d_rel}: no row for `{key}` ({env}default {show(setting.default)}; {t_rel}:{setting.line})"
            )
            continue
        if row.env != setting.env:
            problems.append(
                f"{d_rel}:{row.line}: `{key}`: variable {row.env or '—'} in the doc, "
                f"{setting.env or 'none'} in the template ({t_rel}:{setting.line})"
            )
        if row.default != setting.default:
            problems.append(
                f"{d_rel}:{row.line}: `{key}`: default {show(row.default)} in the doc, "
                f"{show(setting.default)} in the template ({t_rel}:{setting.line})"
            )
    for key, row in doc.items():
        if key in template:
            continue
        hint = ""
        if row.env and row.env in env_owner:
            hint = f"; the template's {row.env} is `{env_owner[row.env]}`"
        problems.append(f"{d_rel}:{row.line}: `{key}` is not a setting in {t_rel}{hint}")

    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(
            f"check-config-doc: {len(problems)} disagreement(s) between {d_rel} and {t_rel}",
            file=sys.stderr,
        )
        return 1
    print(f"check-config-doc: {d_rel} documents all {len(template)} settings of {t_rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
