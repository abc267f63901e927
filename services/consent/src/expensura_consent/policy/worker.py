"""Consent's background work, every round: the first policy version if start-up could not
publish it, notices of each published version to every known subject exactly once (POL-1),
and the expiry of consents whose time has passed.

A notice's row and its event commit together, keyed by (version, subject): a crash or a
second worker can only skip what was already done, never do it twice.

An idle worker sleeps: a round runs when this process publishes a version or records a
consent that expires (they ring its doorbell, `settings.WORKER`, after their commit), when
the next expiry comes due, and otherwise every `worker_interval_seconds` for what no ring
announces (another replica's versions and consents, subjects the projections learn of
late, a restriction lifted).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from expensura_consent.policy.service import notify_batch, publish_initial_version
from expensura_consent.records.service import expire_due, next_expiry
from expensura_consent.settings import WORKER, consent_settings
from expensura_events.db_errors import error_fields
from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime

log = structlog.get_logger("expensura.consent.worker")
# The shortest sleep before an expiry: a consent expiring now is not retried in a busy loop.
MIN_WAIT_SECONDS = 0.2


def wait_before_next_round(next_expiry: datetime | None, now: datetime, interval: float) -> float:
    """Seconds until the next round: the next expiry, at most `interval` away."""
    if next_expiry is None:
        return interval
    return min(interval, max(MIN_WAIT_SECONDS, (next_expiry - now).total_seconds()))


async def consent_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    interval = consent_settings(rt).worker_interval_seconds
    doorbell = rt.doorbell(WORKER)
    initial_published = False
    while not stop.is_set():
        wait = interval
        try:
            if not initial_published:  # in case the database was down at start-up
                initial_published = await publish_initial_version(rt)
            while await notify_batch(rt):
                pass
            await expire_due(rt)
            wait = wait_before_next_round(await next_expiry(rt), utcnow(), interval)
        except Exception as exc:  # database down: next round
            log.warning("consent.worker_failed", **error_fields(exc))
        await doorbell.wait(stop, wait)
