"""Dashboards and alert rules against the metrics contract.

The services export exactly the metrics of `expensura_events.metrics.CONTRACT`, the one
definition (deploy/README.md, "Metrics contract"); the dashboards and alert rules may query
nothing else, and only with those labels, so that a
panel can never sit empty because of a misspelt name. Every alert also names its runbook: a
section of docs/operations.md that exists.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from expensura_events.metrics import series_names
from expensura_ops.deploycheck.kustomize import Loader

# Labels Prometheus adds when it scrapes (deploy/prometheus/*), and a histogram's bucket bound.
SCRAPE_LABELS = frozenset({"job", "instance", "pod", "namespace"})


def _allowed() -> dict[str, frozenset[str]]:
    return {n: labels | SCRAPE_LABELS for n, labels in series_names().items()}


ALLOWED = _allowed()
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
     "unless", "offset", "inf", "nan"}
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_uses(expr: str) -> list[tuple[str, set[str]]]:
    """The metric names a PromQL expression reads, each with the labels it matches on."""
    expr = re.sub(r"\$\{?__\w+\}?|\$\{?\w+\}?", "x", _STRING.sub('""', expr))
    expr = _GROUPING.sub(" ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range selectors and subqueries
    expr = re.sub(r"\boffset\s+-?(x\b|[\d.]+[a-z]+)", " ", expr)  # offset 1h / offset $__range
    uses: list[tuple[str, set[str]]] = []

    def selector(m: re.Match[str]) -> str:
        labels = {part.split("=")[0].strip(" !~") for part in m.group(2).split(",") if part.strip()}
        uses.append((m.group(1) or "", labels))
        return " "

    expr = _SELECTOR.sub(selector, expr)
    for m in _IDENT.finditer(expr):
        rest = expr[m.end() :].lstrip()
        word = m.group(0)
        if rest.startswith("(") or word.lower() in KEYWORDS or re.fullmatch(r"\d\w*", word):
            continue
        uses.append((word, set()))
    return uses


def check_expr(where: str, expr: str) -> list[str]:
    problems: list[str] = []
    for name, labels in metric_uses(expr):
        if not name:
            problems.append(f"{where}: a selector without a metric name: {expr}")
        elif name not in ALLOWED:
            problems.append(f"{where}: {name} is not in the metrics contract")
        elif unknown := labels - ALLOWED[name]:
            problems.append(f"{where}: {name} has no label {sorted(unknown)}")
    return problems


def _panels(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in node.get("panels", []):
        found.append(panel)
        found += _panels(panel)
    return found


def check_dashboards(folder: Path) -> list[str]:
    problems: list[str] = []
    files = sorted(folder.glob("*.json"))
    if not files:
        return [f"{folder}: no dashboards"]
    uids: set[str] = set()
    for path in files:
        try:
            board = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}: not JSON: {exc}")
            continue
        for key in ("uid", "title", "panels"):
            if key not in board:
                problems.append(f"{path.name}: no {key}")
        if board.get("uid") in uids:
            problems.append(f"{path.name}: uid {board.get('uid')} used twice")
        uids.add(board.get("uid", ""))
        for var in board.get("templating", {}).get("list", []):
            query = var.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            for m in re.finditer(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)", text):
                problems += check_expr(
                    f"{path.name} variable {var.get('name')}", f'{m[1]}{{{m[2]}=""}}'
                )
        for panel in _panels(board):
            if panel.get("type") == "row":
                continue
            targets = panel.get("targets") or []
            if not targets:
                problems.append(f"{path.name}: panel {panel.get('title')!r} has no query")
            for target in targets:
                ds = target.get("datasource") or panel.get("datasource") or {}
                if ds.get("uid") != "prometheus":
                    problems.append(
                        f"{path.name}: panel {panel.get('title')!r} uses data source {ds}"
                    )
                problems += check_expr(
                    f"{path.name} panel {panel.get('title')!r}", target.get("expr", "")
                )
    return problems


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def check_alerts(path: Path, operations: Path) -> list[str]:
    problems: list[str] = []
    rules = yaml.load(path.read_text(), Loader=Loader)
    anchors = _anchors(operations.read_text()) if operations.is_file() else set()
    count = 0
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record") or "?"
            count += 1
            for key in ("alert", "expr", "labels", "annotations"):
                if key not in rule:
                    problems.append(f"{path.name}: rule {name}: no {key}")
            problems += check_expr(f"{path.name} rule {name}", str(rule.get("expr", "")))
            runbook = str(rule.get("annotations", {}).get("runbook", ""))
            doc, _, anchor = runbook.partition("#")
            if doc != "docs/operations.md" or anchor not in anchors:
                problems.append(
                    f"{path.name}: rule {name}: runbook {runbook!r} is not a section of "
                    "docs/operations.md"
                )
    if count == 0:
        problems.append(f"{path.name}: no rules")
    return problems
