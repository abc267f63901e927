"""Use cases of legal retention (RUL-2, USE-3): every loans record is appended under the hold
its class demands; erasing a subject places the holds, with their end dates, in the
erasure's transaction; a worker releases each hold when it ends.

Releasing destroys the hold's key (`privacy.shredding.release_hold`, which records
`platform.RetentionHoldEnded` once), then marks the hold released. Both are idempotent: a
round that crashed between them, or two processes racing, finish the same hold once.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.db_errors import error_fields
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, LegalBasis, utcnow
from expensura_events.obligations import enforces
from expensura_events.privacy.ports import ServiceLog
from expensura_events.privacy.shredding import release_hold
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_loans.retention import store
from expensura_loans.retention.domain import (
    Hold,
    clocked_records,
    due,
    holds_on_cancellation,
    release_reason,
    retention_hold_of,
)
from expensura_loans.settings import loans_settings

log = structlog.get_logger("expensura.loans.retention")


def record_envelope(
    rt: ServiceRuntime,
    payload: DomainEvent,
    *,
    stream_id: str,
    subject_id: str | None,
    actor: Actor,
    purpose: Purpose,
    legal_basis: LegalBasis | None = None,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
) -> EventEnvelope:
    """`rt.envelope` for every loans record: under the retention hold its class demands, so
    that it is sealed with the hold's key and outlives its subject's erasure until the hold
    ends (`retention/domain.py`). Every loans append goes through here (a test checks)."""
    envelope = rt.envelope(
        payload,
        stream_id=stream_id,
        subject_id=subject_id,
        actor=actor,
        purpose=purpose,
        legal_basis=legal_basis,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    hold = retention_hold_of(payload)
    return envelope if hold is None else envelope.model_copy(update={"retention_hold": hold})


@enforces("RUL-2", "USE-3")
async def place_retention_holds(
    rt: ServiceLog, conn: AsyncConnection, subject_id: str
) -> dict[str, datetime]:
    """The erasure's hook (`ServiceDefinition.place_holds`): the holds on the subject's held
    records, each ending at the latest end among them, placed in the erasure's transaction;
    returns when each ends (the confirmation's "held until")."""
    records = await rt.store.read_subject(conn, subject_id)
    holds = holds_on_cancellation(subject_id, clocked_records(records, utcnow()))
    await store.place(conn, holds)
    return await store.ends_of(conn, subject_id)


@enforces("RUL-2")
async def release_due_holds(rt: ServiceRuntime, now: datetime) -> list[Hold]:
    """Release every hold whose end has come by `now`: its key destroyed (its records now
    read as redacted), `platform.RetentionHoldEnded` recorded, the hold marked released.
    Returns the holds released now; a hold that fails is logged and tried next round."""
    async with rt.engine.connect() as conn:
        pending = due(await store.unreleased_ended_by(conn, now), now)
    released: list[Hold] = []
    for hold in pending:
        try:
            await release_hold(rt, hold.subject_id, hold.hold, release_reason(hold.hold))
            async with rt.engine.begin() as conn:
                marked = await store.mark_released(conn, hold, now)
        except Exception as exc:  # the key store or the database is away: next round
            log.warning("retention.release_failed", hold=hold.hold, **error_fields(exc))
            continue
        if marked:  # not released meanwhile by another process
            released.append(hold)
            log.info("retention.hold_released", hold=hold.hold, ended_at=hold.ends_at.isoformat())
    return released


async def release_retention_holds(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    """A worker: release the holds that have ended, every `retention_release_interval_seconds`."""
    interval = loans_settings(rt).retention_release_interval_seconds
    while not stop.is_set():
        try:
            await release_due_holds(rt, utcnow())
        except Exception as exc:  # the database is away: next time
            log.warning("retention.release_round_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
