#!/usr/bin/env python3
"""Every metric the dashboard and the alert rules query exists.

    tools/check-metric-names.py

Reads the metric names the code records (`metrics::counter!("name"`,
`gauge!`, `histogram!` in services/ and crates/), the recording rules of
deploy/prometheus/rules.yml and Prometheus' own `up`, then every PromQL
expression in deploy/grafana/*.json and deploy/prometheus/rules.yml, and
fails naming each metric an expression uses that none of those defines.
Histograms also export `_bucket`, `_sum` and `_count` series.
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RECORDED = re.compile(r'metrics::(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
# Words in PromQL that are not metric names.
PROMQL = {
    "sum", "by", "without", "rate", "irate", "increase", "histogram_quantile", "max", "min",
    "avg", "count", "and", "or", "unless", "offset", "on", "ignoring", "group_left",
    "group_right", "bool", "topk", "bottomk", "abs", "clamp_min", "clamp_max", "le", "time",
}
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def exported() -> set[str]:
    names = {"up"}
    for path in list(ROOT.glob("services/**/*.rs")) + list(ROOT.glob("crates/**/*.rs")):
        if "target" in path.parts:
            continue
        for kind, name in RECORDED.findall(path.read_text(encoding="utf-8")):
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def metric_names(expr: str) -> set[str]:
    # Drop label matchers, strings, durations and template variables first.
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    # Numbers and durations (`offset 10m`, `0.99`).
    expr = re.sub(r"(?<![a-zA-Z0-9_:])\d+(\.\d+)?[a-z]*", "", expr)
    names = set()
    for match in IDENT.finditer(expr):
        word = match.group(0)
        if word in PROMQL:
            continue
        names.add(word)
    return names


def rules() -> tuple[set[str], list[tuple[str, str]]]:
    """Recorded names and (where, expr) of every rule, read without YAML."""
    text = (ROOT / "deploy/prometheus/rules.yml").read_text(encoding="utf-8")
    recorded = set(re.findall(r"^\s*- record:\s*(\S+)", text, re.MULTILINE))
    exprs = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        found = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not found:
            continue
        indent, value = len(found.group(1)), found.group(2)
        if value.strip() == "|":
            body = []
            for following in lines[number + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                body.append(following.strip())
            value = " ".join(body)
        exprs.append((f"rules.yml:{number + 1}", value))
    return recorded, exprs


def dashboards() -> list[tuple[str, str]]:
    exprs = []
    for path in sorted((ROOT / "deploy/grafana").glob("*.json")):
        def walk(node, where):
            if isinstance(node, dict):
                if "expr" in node:
                    exprs.append((f"{path.name}: {where}", node["expr"]))
                for value in node.values():
                    walk(value, node.get("title", where))
            elif isinstance(node, list):
                for value in node:
                    walk(value, where)
        walk(json.loads(path.read_text(encoding="utf-8")), path.name)
    return exprs


def main() -> int:
    known = exported()
    recorded, rule_exprs = rules()
    known |= recorded
    unknown = []
    checked = 0
    for where, expr in rule_exprs + dashboards():
        checked += 1
        for name in sorted(metric_names(expr) - known):
            unknown.append(f"{where}: {name} (in {expr!r})")
    if unknown:
        for line in unknown:
            print(f"unknown metric: {line}", file=sys.stderr)
        return 1
    print(f"check-metric-names: {checked} expressions use only the {len(known)} known metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
