"""The viewer's web app: an index, one page per dashboard, and a request id → trace form.

Configured by the environment (`expensura run` sets it): EXPENSURA_PROMETHEUS_URL (the
Prometheus to query), EXPENSURA_DASHBOARDS_DIR (default: deploy/dashboards of the project),
EXPENSURA_TRACES_UI_URL (a traces UI serving `/redirects/traces/<id>`; unset: no form).
Run with `python -m expensura_ops.dashboards.app --port N` (127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from expensura_ops.dashboards import checkout_dashboards
from expensura_ops.dashboards.panels import (
    RANGES,
    Board,
    Series,
    TargetResult,
    load_boards,
    render_board,
    render_index,
    render_panel,
    render_trace_form,
    seconds,
    substitute,
)

PROMETHEUS_ENV = "EXPENSURA_PROMETHEUS_URL"
DASHBOARDS_ENV = "EXPENSURA_DASHBOARDS_DIR"
TRACES_UI_ENV = "EXPENSURA_TRACES_UI_URL"
POINTS = 60  # per timeseries line
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def _series(result: dict[str, Any]) -> Series:
    if "values" in result:
        points = [(float(t), float(v)) for t, v in result["values"]]
    else:
        t, v = result["value"]
        points = [(float(t), float(v))]
    return Series(labels=dict(result.get("metric", {})), points=points)


async def _run_target(
    client: httpx.AsyncClient, panel: dict[str, Any], target: dict[str, Any], board: Board,
    range_: str, now: float,
) -> TargetResult:  # fmt: skip
    result = TargetResult(legend_format=str(target.get("legendFormat", "")))
    try:
        expr = substitute(str(target.get("expr", "")), range_=range_, variables=board.variables)
        if panel.get("type") == "timeseries":
            span = seconds(range_)
            params = {
                "query": expr,
                "start": f"{now - span:.3f}",
                "end": f"{now:.3f}",
                "step": str(max(5, span // POINTS)),
            }
            resp = await client.get("/api/v1/query_range", params=params)
        else:
            resp = await client.get("/api/v1/query", params={"query": expr, "time": f"{now:.3f}"})
        body = resp.json()
        if body.get("status") != "success":
            result.error = str(body.get("error") or resp.status_code)
            return result
        data = body["data"]
        if data["resultType"] == "scalar":
            data = {"result": [{"metric": {}, "value": data["result"]}]}
        result.series = [_series(r) for r in data["result"]]
        result.series.sort(key=lambda s: sorted(s.labels.items()))
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def create_app(prometheus_url: str, dashboards: Path, traces_url: str | None = None) -> Starlette:
    boards = load_boards(dashboards)
    trace_form = render_trace_form(traces_url)

    async def index(request: Request) -> Response:
        return HTMLResponse(
            render_index(list(boards.values()), trace_form=trace_form, prometheus=prometheus_url)
        )

    async def dashboard(request: Request) -> Response:
        board = boards.get(request.path_params["uid"])
        if board is None:
            return HTMLResponse("no such dashboard", status_code=404)
        range_ = request.query_params.get("range", board.default_range)
        if range_ not in RANGES and range_ != board.default_range:
            return HTMLResponse(f"range: one of {', '.join(RANGES)}", status_code=400)
        now = time.time()
        async with httpx.AsyncClient(base_url=prometheus_url, timeout=10) as client:
            per_panel = await asyncio.gather(
                *(
                    asyncio.gather(
                        *(
                            _run_target(client, panel, t, board, range_, now)
                            for t in panel.get("targets") or []
                        )
                    )
                    for panel in board.panels
                )
            )
        rendered = [render_panel(p, r) for p, r in zip(board.panels, per_panel, strict=True)]
        return HTMLResponse(render_board(board, rendered, range_=range_, trace_form=trace_form))

    async def trace(request: Request) -> Response:
        request_id = request.query_params.get("id", "").strip().lower()
        if not traces_url:
            return HTMLResponse("no traces UI configured", status_code=404)
        # only a trace id: nothing else reaches the redirect (no open redirect, no path)
        if not _TRACE_ID.fullmatch(request_id):
            return HTMLResponse("a request id is 32 hex digits", status_code=400)
        return RedirectResponse(f"{traces_url}/redirects/traces/{request_id}", status_code=303)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/d/{uid}", dashboard),
            Route("/trace", trace),
        ]
    )


def app_from_environment() -> Starlette:
    folder = os.environ.get(DASHBOARDS_ENV) or str(checkout_dashboards())
    traces = (os.environ.get(TRACES_UI_ENV) or "").rstrip("/") or None
    return create_app(os.environ[PROMETHEUS_ENV].rstrip("/"), Path(folder), traces)


def main() -> None:  # pragma: no cover - the process `expensura run` starts
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app_from_environment(), host="127.0.0.1", port=args.port, access_log=False)


if __name__ == "__main__":  # pragma: no cover
    main()
