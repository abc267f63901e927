"""Dashboards and alert rules against the metrics contract.

The services will export exactly the metrics below (deploy/README.md, "Metrics contract");
the dashboards and alert rules may query nothing else, and only with those labels, so that a
panel can never sit empty because of a misspelt name. Every alert also names its runbook: a
section of docs/operations.md that exists.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from expensura_ops.deploycheck.kustomize import Loader

# name → labels, as the services export them. A histogram is named by its _bucket series;
# its _sum and _count come with it.
CONTRACT: dict[str, frozenset[str]] = {
    "http_server_requests_total": frozenset({"service", "route", "method", "status"}),
    "http_server_request_duration_seconds_bucket": frozenset(
        {"service", "route", "method", "status"}
    ),
    "expensura_relay_lag_events": frozenset({"service"}),
    "expensura_relay_published_total": frozenset({"service"}),
    "expensura_projection_lag_seconds": frozenset({"service", "projection", "source"}),
    "expensura_projection_applied_total": frozenset({"service", "projection"}),
    "expensura_dead_letters": frozenset({"service", "projection"}),
    "expensura_consent_decision_duration_seconds_bucket": frozenset({"service"}),
    "expensura_append_lock_wait_seconds_bucket": frozenset({"service"}),
    "expensura_keystore_duration_seconds_bucket": frozenset({"service", "operation"}),
    "expensura_consents_given_total": frozenset({"purpose"}),
    "expensura_consents_withdrawn_total": frozenset({"purpose"}),
    "expensura_disclosures_total": frozenset({"partner", "purpose"}),
    "expensura_disclosures_refused_total": frozenset({"partner", "reason"}),
    "expensura_erasures_pending": frozenset(),
    "expensura_incidents_open": frozenset({"severity"}),
}
# Labels Prometheus adds when it scrapes (deploy/prometheus/*), and a histogram's bucket bound.
SCRAPE_LABELS = frozenset({"job", "instance", "pod", "namespace"})


def _allowed() -> dict[str, frozenset[str]]:
    names = dict(CONTRACT)
    for name, labels in CONTRACT.items():
        if name.endswith("_bucket"):
            base = name.removesuffix("_bucket")
            names[name] = labels | {"le"}
            names[base + "_sum"] = labels
            names[base + "_count"] = labels
    return {n: labels | SCRAPE_LABELS for n, labels in names.items()}


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
