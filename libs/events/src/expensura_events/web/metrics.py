"""`/metrics` at the HTTP edge: the request counter and timer, and the gauges read when
Prometheus scrapes (expensura_events.metrics has the contract and the registry).

The request series are labelled with the route TEMPLATE the router matched
(`/v1/me/consents/{consent_id}`), never the path asked for, which can hold a subject id: a
request no route matched is `unmatched`, a method outside HTTP's usual ones `other`. Scrapes
of `/metrics` itself are not counted (Prometheus's own traffic would be most of an idle
service's requests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from expensura_events.db_errors import error_fields
from expensura_events.deadletters import open_dead_letters
from expensura_events.envelope import utcnow
from expensura_events.metrics import HTTP_DURATION, HTTP_REQUESTS, Reading

if TYPE_CHECKING:
    from expensura_events.runtime import ServiceRuntime

log = structlog.get_logger("expensura.metrics")

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SCRAPE_TIMEOUT_S = 2.0  # each database read of a scrape; a slow one is left out, not waited for


def route_template(scope: Scope) -> str:
    """The template of the route the router chose for this request, or `unmatched`."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


class RecordRequests:
    """Counts and times every HTTP request by service, route template, method and status."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # no answer started: the server answers 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope.get("method", "")
            labels = {
                "service": self.service,
                "route": route_template(scope),
                "method": method if method in METHODS else "other",
                "status": str(status),
            }
            HTTP_REQUESTS.labels(**labels).inc()
            HTTP_DURATION.labels(**labels).observe(time.perf_counter() - started)


async def _read(
    what: str, read: Callable[[], Awaitable[list[Reading]]], service: str
) -> list[Reading]:
    """One group of scrape-time readings; left out (and logged) if its source fails."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT_S):
            return await read()
    except Exception as exc:
        log.warning("metrics.reading_failed", service=service, reading=what, **error_fields(exc))
        return []


async def scrape_readings(rt: ServiceRuntime) -> list[Reading]:
    """The gauges of the contract read now: the relay's lag and the open dead letters (from
    the database), the projections' lag (from this process's consumer, when it runs one)
    and the service's own (`ServiceDefinition.readings`)."""
    name = rt.name

    async def relay() -> list[Reading]:
        lag = await rt.relay.lag()
        return [Reading("expensura_relay_lag_events", lag, {"service": name})]

    async def dead_letters() -> list[Reading]:
        open_now = await open_dead_letters(rt.engine)
        if open_now is None:
            return []
        return [
            Reading(
                "expensura_dead_letters",
                open_now.get(r.projection.name, 0),
                {"service": name, "projection": r.projection.name},
            )
            for r in rt.runners
        ]

    async def own() -> list[Reading]:
        hook = rt.definition.readings
        return [] if hook is None else list(await hook(rt))

    now = utcnow()
    lags = [
        Reading(
            "expensura_projection_lag_seconds",
            r.stats.lag_seconds(source, now),
            {"service": name, "projection": r.projection.name, "source": source},
        )
        for r in (rt.runners if rt.workers_running else ())
        for source in r.projection.sources
    ]
    groups = await asyncio.gather(
        _read("relay", relay, name),
        _read("dead_letters", dead_letters, name),
        _read("service", own, name),
    )
    return [*lags, *(r for group in groups for r in group)]
