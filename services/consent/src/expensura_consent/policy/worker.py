"""Consent's background work, every round: the first policy version if start-up could not
publish it, notices of each published version to every known subject exactly once (POL-1),
and the expiry of consents whose time has passed.

A notice's row and its event commit together, keyed by (version, subject): a crash or a
second worker can only skip what was already done, never do it twice.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from expensura_consent.policy.service import notify_batch, publish_initial_version
from expensura_consent.records.service import expire_due
from expensura_consent.settings import consent_settings
from expensura_events.db_errors import error_fields
from expensura_events.runtime import ServiceRuntime

log = structlog.get_logger("expensura.consent.worker")


async def consent_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    interval = consent_settings(rt).worker_interval_seconds
    initial_published = False
    while not stop.is_set():
        try:
            if not initial_published:  # in case the database was down at start-up
                initial_published = await publish_initial_version(rt)
            while await notify_batch(rt):
                pass
            await expire_due(rt)
        except Exception as exc:  # database down: next round
            log.warning("consent.worker_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
