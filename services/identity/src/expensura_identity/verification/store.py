"""Verification requests in SQL: state and retry bookkeeping, never the identifying data
(that lives encrypted in the request's event). A state change is a compare-and-set on the
state the domain's transition starts from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_identity.tables import verification_requests
from expensura_identity.verification.domain import VerificationState

t = verification_requests


@dataclass(frozen=True)
class VerificationRecord:
    request_id: UUID
    subject_id: str
    state: VerificationState
    attempts: int
    created_at: datetime


def _record(row: Row[Any]) -> VerificationRecord:
    r = row._mapping
    return VerificationRecord(
        r["request_id"],
        r["subject_id"],
        VerificationState(r["state"]),
        r["attempts"],
        r["created_at"],
    )


async def insert(conn: AsyncConnection, request_id: UUID, subject_id: str, at: datetime) -> None:
    await conn.execute(
        t.insert().values(
            request_id=request_id,
            subject_id=subject_id,
            state=VerificationState.PENDING.value,
            attempts=0,
            next_attempt_at=at,
            created_at=at,
            updated_at=at,
        )
    )


async def any_in(
    conn: AsyncConnection, subject_id: str, states: Iterable[VerificationState]
) -> UUID | None:
    """A request of the subject's in one of these states, if any."""
    row = (
        await conn.execute(
            select(t.c.request_id).where(
                t.c.subject_id == subject_id, t.c.state.in_([s.value for s in states])
            )
        )
    ).first()
    return None if row is None else row.request_id


async def latest(conn: AsyncConnection, subject_id: str) -> VerificationRecord | None:
    row = (
        await conn.execute(
            select(t).where(t.c.subject_id == subject_id).order_by(t.c.created_at.desc()).limit(1)
        )
    ).one_or_none()
    return None if row is None else _record(row)


async def claim(conn: AsyncConnection, request_id: UUID) -> VerificationRecord | None:
    """The request, locked for the caller's transaction; None if unknown or another worker
    holds it (it is settling it now)."""
    row = (
        await conn.execute(
            select(t).where(t.c.request_id == request_id).with_for_update(skip_locked=True)
        )
    ).one_or_none()
    return None if row is None else _record(row)


async def transition(
    conn: AsyncConnection,
    request_id: UUID,
    current: VerificationState,
    to: VerificationState,
    *,
    attempts: int,
    at: datetime,
    next_attempt_at: datetime | None = None,
    last_error: str | None = None,
) -> bool:
    """current → to, with the attempt's bookkeeping; False if the state was not `current`."""
    values: dict[str, Any] = {"state": to.value, "attempts": attempts, "updated_at": at}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if last_error is not None:
        values["last_error"] = last_error
    changed = await conn.execute(
        update(t).where(t.c.request_id == request_id, t.c.state == current.value).values(**values)
    )
    return changed.rowcount == 1


async def next_attempt(conn: AsyncConnection) -> datetime | None:
    """When the earliest pending request is next due (None: nothing pending)."""
    earliest: datetime | None = (
        await conn.execute(
            select(func.min(t.c.next_attempt_at)).where(
                t.c.state == VerificationState.PENDING.value
            )
        )
    ).scalar_one()
    return earliest


async def due(conn: AsyncConnection, now: datetime, limit: int = 50) -> list[UUID]:
    """Pending requests whose next attempt is due."""
    return list(
        (
            await conn.execute(
                select(t.c.request_id)
                .where(t.c.state == VerificationState.PENDING.value, t.c.next_attempt_at <= now)
                .limit(limit)
            )
        ).scalars()
    )
