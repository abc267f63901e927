"""Moves cancellations along (see `service.advance_cancellations`), round after round.

An idle worker sleeps: it runs a round when the next cooling-off period ends, when this
process opens a cancellation (its doorbell, `settings.RIGHTS_WORKER`), and otherwise every
`rights_worker_interval_seconds` (requests in flight, and what other replicas open).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from expensura_events.db_errors import error_fields
from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_identity.rights.service import advance_cancellations
from expensura_identity.settings import RIGHTS_WORKER, identity_settings

log = structlog.get_logger("expensura.identity.rights")
# The shortest sleep before a cooling-off period ends: no busy loop on a request due now.
MIN_WAIT_SECONDS = 0.2


def wait_before_next_round(next_end: datetime | None, now: datetime, interval: float) -> float:
    """Seconds until the next round: the next cooling-off end, at most `interval` away."""
    if next_end is None:
        return interval
    return min(interval, max(MIN_WAIT_SECONDS, (next_end - now).total_seconds()))


async def cancellation_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    interval = identity_settings(rt).rights_worker_interval_seconds
    doorbell = rt.doorbell(RIGHTS_WORKER)
    while not stop.is_set():
        wait = interval
        try:
            wait = wait_before_next_round(await advance_cancellations(rt), utcnow(), interval)
        except Exception as exc:  # database down and the like: try again next round
            log.warning("rights.worker_failed", **error_fields(exc))
        await doorbell.wait(stop, wait)
