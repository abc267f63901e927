"""Moves cancellations along (see `service.advance_cancellations`), round after round."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from expensura_events.db_errors import error_fields
from expensura_events.runtime import ServiceRuntime
from expensura_identity.rights.service import advance_cancellations
from expensura_identity.settings import identity_settings

log = structlog.get_logger("expensura.identity.rights")


async def cancellation_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    interval = identity_settings(rt).rights_worker_interval_seconds
    while not stop.is_set():
        try:
            await advance_cancellations(rt)
        except Exception as exc:  # database down and the like: try again next round
            log.warning("rights.worker_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
