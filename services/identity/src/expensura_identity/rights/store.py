"""Cancellation requests, erasure confirmations and certificates in SQL. A request's state
changes only through `transition`: the domain's table names the target, and the UPDATE is
a compare-and-set on the state it starts from."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_identity.rights.domain import (
    ERASURE_PENDING_STATES,
    INITIAL_STATE,
    OPEN_STATES,
    CancellationAction,
    CancellationRecord,
    CancellationState,
    Certificate,
)
from expensura_identity.rights.domain import transition as next_state
from expensura_identity.tables import (
    cancellation_requests,
    erasure_certificates,
    erasure_confirmations,
    retention_holds_ended,
)

c = cancellation_requests


def _record(row: Row[Any]) -> CancellationRecord:
    r = row._mapping
    return CancellationRecord(
        r["request_id"],
        r["subject_id"],
        CancellationState(r["state"]),
        r["requested_at"],
        r["cooling_off_until"],
        r["erasure_requested_at"],
        r["attempts"],
    )


async def open_request(conn: AsyncConnection, subject_id: str) -> UUID | None:
    row = (
        await conn.execute(
            select(c.c.request_id).where(
                c.c.subject_id == subject_id, c.c.state.in_([s.value for s in OPEN_STATES])
            )
        )
    ).first()
    return None if row is None else row.request_id


async def insert(
    conn: AsyncConnection,
    request_id: UUID,
    subject_id: str,
    requested_at: datetime,
    cooling_off_until: datetime,
) -> None:
    await conn.execute(
        c.insert().values(
            request_id=request_id,
            subject_id=subject_id,
            state=INITIAL_STATE.value,
            requested_at=requested_at,
            cooling_off_until=cooling_off_until,
            attempts=0,
        )
    )


async def latest(conn: AsyncConnection, subject_id: str) -> CancellationRecord | None:
    row = (
        await conn.execute(
            select(c).where(c.c.subject_id == subject_id).order_by(c.c.requested_at.desc()).limit(1)
        )
    ).first()
    return None if row is None else _record(row)


async def for_update(conn: AsyncConnection, request_id: UUID) -> CancellationRecord | None:
    """The request, locked until the caller's transaction ends."""
    row = (
        await conn.execute(select(c).where(c.c.request_id == request_id).with_for_update())
    ).first()
    return None if row is None else _record(row)


async def due(conn: AsyncConnection, now: datetime) -> list[CancellationRecord]:
    """Requests the worker moves on: cooling-off over, processing stopped, or erasing."""
    rows = await conn.execute(
        select(c).where(
            ((c.c.state == CancellationState.COOLING_OFF.value) & (c.c.cooling_off_until <= now))
            | (c.c.state == CancellationState.PROCESSING_STOPPED.value)
            | (c.c.state == CancellationState.ERASING.value)
        )
    )
    return [_record(r) for r in rows]


async def next_cooling_off_end(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When the next cooling-off period still running after `now` ends (None: none is)."""
    ends: datetime | None = await conn.scalar(
        select(func.min(c.c.cooling_off_until)).where(
            c.c.state == CancellationState.COOLING_OFF.value, c.c.cooling_off_until > now
        )
    )
    return ends


async def transition(
    conn: AsyncConnection,
    request: CancellationRecord,
    action: CancellationAction,
    **values: Any,
) -> CancellationState | None:
    """Move the request by `action` (IllegalTransition if the table has no such move) from
    the state it was read in; None if it moved meanwhile (withdrawn, or another worker got
    there first). Extra column values (attempts, times) are written with the state."""
    to = next_state(request.state, action)
    changed = await conn.execute(
        update(c)
        .where(
            c.c.request_id == request.request_id,
            c.c.state == request.state.value,
            c.c.attempts == request.attempts,
        )
        .values(state=to.value, **values)
    )
    return to if changed.rowcount == 1 else None


# --- confirmations and certificates ----------------------------------------------------------


async def add_confirmation(
    conn: AsyncConnection,
    request_id: UUID,
    service: str,
    confirmed_at: datetime,
    purged: Any,
    retained: Any,
    event_id: UUID,
) -> None:
    await conn.execute(
        upsert(erasure_confirmations)
        .values(
            request_id=request_id,
            service=service,
            confirmed_at=confirmed_at,
            purged=purged,
            retained=retained,
            event_id=event_id,
        )
        .on_conflict_do_nothing()
    )


async def confirmed_services(conn: AsyncConnection, request_id: UUID) -> set[str]:
    return set(
        (
            await conn.execute(
                select(erasure_confirmations.c.service).where(
                    erasure_confirmations.c.request_id == request_id
                )
            )
        ).scalars()
    )


async def certificate(conn: AsyncConnection, request_id: UUID) -> Certificate | None:
    row = (
        await conn.execute(
            select(erasure_certificates).where(erasure_certificates.c.request_id == request_id)
        )
    ).first()
    if row is None:
        return None
    return Certificate(row.request_id, row.subject_id, row.issued_at, row.services, row.event_id)


async def insert_certificate(conn: AsyncConnection, cert: Certificate) -> None:
    await conn.execute(
        erasure_certificates.insert().values(
            request_id=cert.request_id,
            subject_id=cert.subject_id,
            issued_at=cert.issued_at,
            services=cert.services,
            event_id=cert.event_id,
        )
    )


async def retained(conn: AsyncConnection, request_id: UUID) -> dict[str, list[str]]:
    """What each store said it kept under a hold, by store."""
    rows = await conn.execute(
        select(erasure_confirmations.c.service, erasure_confirmations.c.retained).where(
            erasure_confirmations.c.request_id == request_id
        )
    )
    return {r.service: list(r.retained or []) for r in rows}


async def add_hold_ended(
    conn: AsyncConnection,
    subject_id: str,
    service: str,
    hold: str,
    ended_at: datetime,
    event_id: UUID,
) -> None:
    await conn.execute(
        upsert(retention_holds_ended)
        .values(
            subject_id=subject_id,
            service=service,
            hold=hold,
            ended_at=ended_at,
            event_id=event_id,
        )
        .on_conflict_do_nothing()
    )


async def holds_ended(conn: AsyncConnection, subject_id: str) -> dict[tuple[str, str], datetime]:
    """The subject's holds the stores ended, by store and hold."""
    t = retention_holds_ended
    rows = await conn.execute(
        select(t.c.service, t.c.hold, t.c.ended_at).where(t.c.subject_id == subject_id)
    )
    return {(r.service, r.hold): r.ended_at for r in rows}


async def erasures_pending(conn: AsyncConnection) -> int:
    """Requests whose erasure was asked for and not yet certified (every store confirmed)."""
    count = await conn.scalar(
        select(func.count())
        .select_from(c)
        .where(c.c.state.in_([s.value for s in ERASURE_PENDING_STATES]))
    )
    return int(count or 0)
