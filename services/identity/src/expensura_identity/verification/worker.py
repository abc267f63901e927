"""Retries pending verifications: an agency outage delays verification, never loses it."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from expensura_events.db_errors import error_fields
from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_identity.verification import service, store

log = structlog.get_logger("expensura.identity.verification")
INTERVAL_SECONDS = 0.2


async def verification_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async with rt.engine.connect() as conn:
                due = await store.due(conn, utcnow())
            for request_id in due:
                await service.settle(rt, request_id)
        except Exception as exc:  # database down: next round
            log.warning(
                "verification.worker_failed", **error_fields(exc)
            )  # no text: it may quote data
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL_SECONDS)
