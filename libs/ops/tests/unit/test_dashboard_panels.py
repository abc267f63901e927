"""The viewer's pure half: Grafana's variables substituted as Grafana would, and panels
rendered with their series' legends and latest values, from the real dashboard files."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from expensura_ops.dashboards import checkout_dashboards
from expensura_ops.dashboards.panels import (
    Series,
    TargetResult,
    format_value,
    legend,
    load_boards,
    render_board,
    render_panel,
    render_trace_form,
    seconds,
    substitute,
)
from expensura_ops.deploycheck.metrics import check_expr

BOARDS = load_boards(checkout_dashboards())


def test_the_viewer_reads_the_three_deployment_dashboards() -> None:
    assert checkout_dashboards() == Path(__file__).parents[4] / "deploy" / "dashboards"
    assert {b.title for b in BOARDS.values()} == {
        "Expensura — service overview",
        "Expensura — event pipeline",
        "Expensura — privacy operations",
    }
    overview = BOARDS["expensura-service-overview"]
    assert overview.variables == {"service": ".*"}  # "All" stands for its allValue
    assert overview.default_range == "6h"  # the dashboard's own time.from


def test_variables_are_replaced_as_grafana_replaces_them() -> None:
    expr = (
        'sum by (service) (rate(http_server_requests_total{service=~"$service"}'
        "[$__rate_interval])) + increase(x[$__range]) + ${service} + [[service]]"
    )
    got = substitute(expr, range_="1h", variables={"service": ".*"})
    assert got == (
        'sum by (service) (rate(http_server_requests_total{service=~".*"}[1m]))'
        " + increase(x[1h]) + .* + .*"
    )
    assert substitute("x[$__range]", range_="15m", variables={}, rate_interval="30s") == "x[15m]"
    assert substitute("$__range_s", range_="1h30m", variables={}) == "5400"


def test_an_unknown_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(ValueError, match=r"\$tenant"):
        substitute('x{tenant="$tenant"}', range_="1h", variables={"service": ".*"})
    with pytest.raises(ValueError):
        seconds("an hour")


def test_every_panel_query_of_every_dashboard_substitutes_to_plain_promql() -> None:
    for board in BOARDS.values():
        for panel in board.panels:
            for target in panel.get("targets") or []:
                expr = substitute(target["expr"], range_="1h", variables=board.variables)
                assert "$" not in expr and "[[" not in expr, expr
                assert not check_expr(panel["title"], expr)  # still the contract's metrics


def test_legends_follow_the_panels_legend_format() -> None:
    labels = {"partner": "bureau-1", "purpose": "credit-assessment", "job": "expensura"}
    assert legend("{{partner}} {{ purpose }}", labels) == "bureau-1 credit-assessment"
    assert legend("given {{purpose}}", labels) == "given credit-assessment"
    assert legend("{{missing}}", labels) == ""
    assert legend("", {"b": "2", "a": "1"}) == '{a="1", b="2"}'


def test_values_are_shown_whole_when_whole_and_with_the_panels_unit() -> None:
    assert format_value(5.0) == "5"
    assert format_value(0.0) == "0"
    assert format_value(2.0 / 3.0) == "0.667"
    assert format_value(0.0123, "s") == "0.0123 s"
    assert format_value(0.05, "percentunit") == "5%"
    assert format_value(float("nan")) == "NaN"


def _cells(fragment: str) -> dict[str, str]:
    rows = re.findall(
        r'<tr data-legend="([^"]*)"><td class="legend">[^<]*</td><td class="value"[^>]*>([^<]*)<',
        fragment,
    )
    return {html.unescape(k): html.unescape(v) for k, v in rows}


def test_a_stat_panel_shows_each_series_legend_and_latest_value() -> None:
    panel = next(
        p
        for p in BOARDS["expensura-privacy-operations"].panels
        if p["title"] == "Disclosures in range, by partner and purpose"
    )
    result = TargetResult(
        legend_format=panel["targets"][0]["legendFormat"],
        series=[
            Series({"partner": "bureau-1", "purpose": "credit-assessment"}, [(1.0, 5.0)]),
            Series({"partner": "<script>", "purpose": "marketing"}, [(1.0, 2.0)]),
        ],
    )
    rendered = render_panel(panel, [result])
    assert _cells(rendered) == {"bureau-1 credit-assessment": "5", "<script> marketing": "2"}
    assert "<script>" not in rendered  # a label value is text, never markup
    assert 'data-title="Disclosures in range, by partner and purpose"' in rendered
    assert "<svg" not in rendered  # a bar gauge has no line


def test_a_timeseries_panel_shows_the_latest_value_and_a_line() -> None:
    panel = {"type": "timeseries", "title": "Relay lag", "fieldConfig": {"defaults": {}}}
    points = [(0.0, 1.0), (5.0, 3.0), (10.0, 2.0)]
    rendered = render_panel(
        panel, [TargetResult("{{service}}", [Series({"service": "consent"}, points)])]
    )
    assert _cells(rendered) == {"consent": "2"}
    assert re.search(r'<polyline [^>]*points="0\.0,28\.0 60\.0,0\.0 120\.0,14\.0"', rendered)


def test_a_panel_without_data_or_with_a_failed_query_says_so() -> None:
    panel = {"type": "stat", "title": "Erasures pending"}
    assert "no data" in render_panel(panel, [TargetResult("pending")])
    failed = render_panel(panel, [TargetResult("pending", error="parse error at char 3")])
    assert "query failed: parse error at char 3" in failed and "no data" not in failed


def test_rows_head_the_panels_below_them_in_dashboard_order() -> None:
    board = BOARDS["expensura-privacy-operations"]
    rendered = [
        render_panel(p, [TargetResult("")] * len(p.get("targets") or [])) for p in board.panels
    ]
    page = render_board(board, rendered, range_="1h")
    headings = re.findall(r'<h2 class="row">([^<]*)</h2>', page)
    assert headings == ["Consent", "Disclosures to partners", "Rights and incidents"]
    assert page.index("Consents given in range") < page.index("Disclosures to partners")
    assert page.index("Incidents open, by severity") > page.index("Rights and incidents")


def test_the_trace_form_shows_only_when_a_traces_ui_is_configured() -> None:
    assert render_trace_form(None) == ""
    assert 'action="/trace"' in render_trace_form("http://127.0.0.1:8196")
