"""The results as rich tables on the terminal, and as docs/performance.md (a template)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from string import Template

from rich.console import Console
from rich.table import Table

from bench import tables
from bench.diagnostics import PROBE_MESSAGES
from bench.latency import GROWTH_FACTOR, GROWTH_SLACK_MS, KEPT_UP_SHARE
from bench.results import Results
from bench.signins import PROBE_INTERVAL_S

TEMPLATE = Path(__file__).with_name("performance.md.tmpl")

Rows = Callable[[Results], list[list[str]]]

# Each table: its title on the terminal, its headers, its rows (the doc's `${kind}_table`).
SECTIONS: dict[str, tuple[str, list[str], Rows]] = {
    "target": (
        "Issue 15's figures against their targets",
        tables.TARGET_HEADERS,
        tables.target_rows,
    ),
    "throughput": (
        "Append throughput: append vs a plain INSERT of the same bytes",
        tables.THROUGHPUT_HEADERS,
        tables.throughput_rows,
    ),
    "latency": (
        "Commit-to-projection latency (relay → broker → runner, one process)",
        tables.LATENCY_HEADERS,
        tables.latency_rows,
    ),
    "replay": ("Reading the log back", tables.REPLAY_HEADERS, tables.replay_rows),
    "decision": ("Consent decisions under load", tables.DECISION_HEADERS, tables.decision_rows),
    "sign_in": (
        "Identity's health check while users sign in",
        tables.SIGN_IN_HEADERS,
        tables.sign_in_rows,
    ),
    "diagnostic": (
        "Database statements per append",
        tables.DIAGNOSTIC_HEADERS,
        tables.diagnostic_rows,
    ),
    "fetch": ("Broker fetch delay", tables.FETCH_HEADERS, tables.fetch_rows),
    "idle": ("An idle stack's CPU (no requests)", tables.IDLE_HEADERS, tables.idle_rows),
}


# -- terminal ------------------------------------------------------------------------------------


def _rich(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_results(console: Console, r: Results) -> None:
    console.print()
    for title, headers, rows in SECTIONS.values():
        console.print(_rich(title, headers, rows(r)))
    d = r.diagnostics.topic_check_ms
    console.print(
        f"relay topic check: p50 {tables.ms(d['p50'])} ms, max {tables.ms(d['max'])} ms; "
        f"consumer group joined after {r.latency.join_s:.1f} s; "
        f"whole run {r.total_s:.0f} s (profile {r.profile.name})"
    )


# -- docs/performance.md -------------------------------------------------------------------------


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _bullets(lines: list[str]) -> str:
    return "\n".join(
        textwrap.fill(f"- {line}", 92, subsequent_indent="  ", break_on_hyphens=False)
        for line in lines
    )


def _busy_note(r: Results) -> str:
    m = r.machine
    if m.load_before[0] <= 0.5 * m.cores:
        return ""
    note = (
        f"**Note:** the machine was busy with other work when this run started (1-minute load "
        f"average {m.load_before[0]:.2f} on {m.cores} cores): expect lower and noisier figures "
        "than on an idle machine, above all for latency. The machine CPU columns show how busy "
        "it was during each measurement."
    )
    return textwrap.fill(note, 92) + "\n\n"


def _joined(values: tuple[float, ...] | tuple[int, ...]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _reflow(text: str, width: int = 92) -> str:
    """Re-wrap the template's prose paragraphs once the figures are in (tables, headings and
    lists stay as they are)."""
    blocks = text.split("\n\n")
    return "\n\n".join(
        b if b.startswith(("|", "#", "- ", "**")) else textwrap.fill(" ".join(b.split()), width)
        for b in blocks
    )


def render(fields: dict[str, str]) -> str:
    return _reflow(Template(TEMPLATE.read_text()).substitute(fields)) + "\n"


def fields(r: Results) -> dict[str, str]:
    """The template's parameters: the run's figures and the constants they were taken with."""
    p, lat, d = r.profile, r.latency, r.decisions
    return {
        f"{kind}_table": _md_table(headers, rows(r))
        for kind, (_, headers, rows) in SECTIONS.items()
    } | {
        "busy_note": _busy_note(r),
        "summary": _bullets(tables.summary_lines(r)),
        "machine_table": _md_table(tables.MACHINE_HEADERS, tables.machine_rows(r)),
        "warmup_s": f"{p.warmup_s:g}",
        "window_s": f"{p.window_s:g}",
        "batch": str(p.batch),
        "writer_counts": " or ".join(str(w) for w in p.writer_counts),
        "rates": _joined(p.rates),
        "latency_s": f"{p.latency_s:g}",
        "latency_warmup_s": f"{p.latency_warmup_s:g}",
        "kept_up_share": f"{KEPT_UP_SHARE:.0%}",
        "growth_factor": f"{GROWTH_FACTOR:g}",
        "growth_slack_ms": f"{GROWTH_SLACK_MS:g}",
        "join_s": f"{lat.join_s:.1f}",
        "relay_published": f"{lat.relay_published:,}",
        "relay_errors": str(lat.relay_errors),
        "runner_applied": f"{lat.runner_applied:,}",
        "runner_errors": str(lat.runner_errors),
        "corpus": f"{r.replay.corpus:,}",
        "subjects": f"{r.replay.subjects:,}",
        "decision_subjects": str(d.subjects),
        "allowed_share": f"{d.allowed_share:.0%}",
        "probe_messages": str(PROBE_MESSAGES),
        "sign_in_clients": str(r.sign_ins.concurrency),
        "probe_interval_ms": f"{PROBE_INTERVAL_S * 1000:g}",
        "topic_check_p50": tables.ms(r.diagnostics.topic_check_ms["p50"]),
        "topic_check_max": tables.ms(r.diagnostics.topic_check_ms["max"]),
        "idle_settle_s": f"{p.idle_settle_s:g}",
        "idle_s": f"{p.idle_s:g}",
    }


def markdown(r: Results) -> str:
    return render(fields(r))
