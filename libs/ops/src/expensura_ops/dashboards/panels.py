"""The pure half of the viewer: a Grafana dashboard's queries made runnable (its variables
substituted as Grafana would) and its panels rendered as HTML from query results.

No I/O here: `app.py` fetches the results from Prometheus and serves the pages.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE_INTERVAL = "1m"  # four scrapes at the local 5 s interval, as Grafana's $__rate_interval
RANGES = ("5m", "15m", "1h", "6h", "24h")
_DURATION = re.compile(r"(\d+)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    default_range: str
    panels: list[dict[str, Any]]
    variables: dict[str, str]  # name → the value "All" stands for (a regex)


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value), oldest first; the last is latest

    @property
    def latest(self) -> float:
        return self.points[-1][1]


@dataclass
class TargetResult:
    legend_format: str
    series: list[Series] = field(default_factory=list)
    error: str | None = None


def seconds(duration: str) -> int:
    """'1h' → 3600 (Prometheus durations, also compound: '1h30m')."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def load_board(path: Path) -> Board:
    raw = json.loads(path.read_text())
    variables = {
        v["name"]: v.get("allValue") or ".*"
        for v in raw.get("templating", {}).get("list", [])
        if "name" in v
    }
    start = str(raw.get("time", {}).get("from", "now-6h"))
    default_range = start.removeprefix("now-") if start.startswith("now-") else "6h"
    return Board(
        uid=raw["uid"],
        title=raw["title"],
        description=raw.get("description", ""),
        default_range=default_range,
        panels=list(_flatten(raw.get("panels", []))),
        variables=variables,
    )


def load_boards(folder: Path) -> dict[str, Board]:
    boards = (load_board(p) for p in sorted(folder.glob("*.json")))
    return {b.uid: b for b in boards}


def _flatten(panels: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in panels:
        found.append(panel)
        found += _flatten(panel.get("panels", []))
    return found


def substitute(
    expr: str,
    *,
    range_: str,
    variables: Mapping[str, str],
    rate_interval: str = RATE_INTERVAL,
) -> str:
    """A panel's PromQL with Grafana's variables replaced: a dashboard variable by the value
    its "All" stands for ($service → .*), $__rate_interval, $__range (and its _s/_ms forms),
    $__interval by the rate interval. An unknown variable is an error, not a silent blank."""
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__range": range_,
        "__range_s": str(seconds(range_)),
        "__range_ms": str(seconds(range_) * 1000),
    }

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return variables[name]
        raise ValueError(f"unknown variable ${name} in {expr}")

    return _VARIABLE.sub(value, expr)


def legend(legend_format: str, labels: Mapping[str, str]) -> str:
    """Grafana's legend: '{{partner}} {{purpose}}' with the series' labels; no format: the
    labels themselves."""
    if not legend_format:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), legend_format).strip()


def format_value(value: float, unit: str = "") -> str:
    """A number as a panel shows it: whole numbers whole, others to three significant
    digits, with the panel's unit."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if unit == "percentunit":
        return f"{_number(value * 100)}%"
    suffix = {"s": " s", "ms": " ms", "reqps": " req/s", "ops": " /s", "percent": "%"}
    return _number(value) + suffix.get(unit, "")


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3g}"


def _sparkline(points: Sequence[tuple[float, float]], width: int = 120, height: int = 28) -> str:
    finite = [(t, v) for t, v in points if math.isfinite(v)]
    if len(finite) < 2:
        return ""
    t0, t1 = finite[0][0], finite[-1][0]
    low, high = min(v for _, v in finite), max(v for _, v in finite)
    span_t, span_v = (t1 - t0) or 1.0, (high - low) or 1.0
    xy = " ".join(
        f"{(t - t0) / span_t * width:.1f},{height - (v - low) / span_v * height:.1f}"
        for t, v in finite
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline fill="none" stroke="#3b6ea5" stroke-width="1.5" points="{xy}"/></svg>'
    )


def render_panel(panel: Mapping[str, Any], results: Sequence[TargetResult]) -> str:
    """One panel: a row panel as a heading; any other as a table of its series' legends and
    latest values (a timeseries adds a line of the range), or why it has none."""
    title = html.escape(str(panel.get("title", "")))
    kind = str(panel.get("type", ""))
    if kind == "row":
        return f'<h2 class="row">{title}</h2>'
    unit = str(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""))
    rows: list[str] = []
    for result in results:
        if result.error:
            rows.append(
                f'<tr class="error"><td colspan="3">query failed: {html.escape(result.error)}'
                "</td></tr>"
            )
            continue
        for s in result.series:
            name = html.escape(legend(result.legend_format, s.labels), quote=True)
            line = _sparkline(s.points) if kind == "timeseries" else ""
            rows.append(
                f'<tr data-legend="{name}"><td class="legend">{name}</td>'
                f'<td class="value" data-value="{s.latest!r}">'
                f"{html.escape(format_value(s.latest, unit))}</td><td>{line}</td></tr>"
            )
    body = "".join(rows) or '<tr class="empty"><td colspan="3">no data</td></tr>'
    description = html.escape(str(panel.get("description") or ""))
    return (
        f'<section class="panel {html.escape(kind)}" data-title="{title}">'
        f'<h3 title="{description}">{title}</h3><table>{body}</table></section>'
    )


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2330}"
    "h2.row{border-bottom:1px solid #ccd;margin-top:1.5rem;font-size:1.1rem}"
    ".panels{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:1rem}"
    ".panel{border:1px solid #dde;border-radius:6px;padding:.5rem .8rem}"
    ".panel h3{font-size:.95rem;margin:.2rem 0 .5rem}.panel table{width:100%}"
    "td.value{text-align:right;white-space:nowrap;padding:0 .6rem;font-weight:600;"
    "font-variant-numeric:tabular-nums}"
    "td.legend{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}"
    ".empty,.error{color:#888}.error{color:#b00}nav a{margin-right:.8rem}"
)


def page(title: str, body: str, *, refresh: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def render_board(
    board: Board,
    rendered_panels: Sequence[str],
    *,
    range_: str,
    trace_form: str = "",
) -> str:
    """A dashboard's page: its panels in order, a row heading closing the grid before it."""
    ranges = " ".join(
        f'<a href="?range={r}"{" aria-current=page" if r == range_ else ""}>{r}</a>' for r in RANGES
    )
    parts: list[str] = []
    grid: list[str] = []
    for chunk in rendered_panels:
        if chunk.startswith('<h2 class="row">'):
            if grid:
                parts.append(f'<div class="panels">{"".join(grid)}</div>')
                grid = []
            parts.append(chunk)
        else:
            grid.append(chunk)
    if grid:
        parts.append(f'<div class="panels">{"".join(grid)}</div>')
    body = (
        f'<nav><a href="/">all dashboards</a> range: {ranges}</nav>'
        f"<h1>{html.escape(board.title)}</h1><p>{html.escape(board.description)}</p>"
        f'<p class="range">last {html.escape(range_)}</p>{trace_form}{"".join(parts)}'
    )
    return page(board.title, body, refresh=30)


def render_index(boards: Sequence[Board], *, trace_form: str = "", prometheus: str = "") -> str:
    items = "".join(
        f'<li><a href="/d/{html.escape(b.uid)}">{html.escape(b.title)}</a>'
        f" — {html.escape(b.description)}</li>"
        for b in boards
    )
    source = f'<p>From Prometheus at <a href="{html.escape(prometheus)}">' if prometheus else ""
    source += f"{html.escape(prometheus)}</a></p>" if prometheus else ""
    return page("Expensura dashboards", f"<h1>Dashboards</h1><ul>{items}</ul>{source}{trace_form}")


def render_trace_form(traces_url: str | None) -> str:
    """The request id → trace form, only when a traces UI is configured."""
    if not traces_url:
        return ""
    return (
        '<form class="trace" action="/trace" method="get"><label>Request id → trace: '
        '<input name="id" pattern="[0-9a-fA-F]{32}" required size="34"></label> '
        "<button>open trace</button></form>"
    )
