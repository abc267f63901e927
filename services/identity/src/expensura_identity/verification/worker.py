"""Retries pending verifications: an agency outage delays verification, never loses it."""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from expensura_events.db_errors import error_fields
from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_identity.settings import VERIFICATION_WORKER
from expensura_identity.verification import service, store

log = structlog.get_logger("expensura.identity.verification")
# The worker sleeps until the earliest pending request is due, at least MIN and at most MAX
# seconds; a request this process's first try left pending rings its doorbell
# (`settings.VERIFICATION_WORKER`), so the worker then sleeps until that request is due.
# An idle service asks its database every MAX seconds, and a request another replica left
# pending is retried within MAX seconds of its time.
MIN_WAIT_SECONDS = 0.2
MAX_WAIT_SECONDS = 5.0


def wait_before_next_round(next_attempt: datetime | None, now: datetime) -> float:
    """Seconds until the next round, from when the earliest pending request is due."""
    if next_attempt is None:
        return MAX_WAIT_SECONDS
    until = (next_attempt - now).total_seconds()
    return min(MAX_WAIT_SECONDS, max(MIN_WAIT_SECONDS, until))


async def verification_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    doorbell = rt.doorbell(VERIFICATION_WORKER)
    while not stop.is_set():
        wait = MIN_WAIT_SECONDS
        try:
            async with rt.engine.connect() as conn:
                next_attempt, now = await store.next_attempt(conn), utcnow()
                due = await store.due(conn, now) if next_attempt and next_attempt <= now else []
            for request_id in due:
                await service.settle(rt, request_id)
            if not due:
                wait = wait_before_next_round(next_attempt, now)
        except Exception as exc:  # database down: next round
            log.warning(
                "verification.worker_failed", **error_fields(exc)
            )  # no text: it may quote data
        await doorbell.wait(stop, wait)
