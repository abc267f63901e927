"""Customer notices in SQL: the row of each notice, its sealed body, and the sender's claim."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, null, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.loans_notices import NoticeKind
from expensura_incident.notices.domain import CustomerNotice, NoticeState
from expensura_incident.tables import customer_notices as t


async def add(
    conn: AsyncConnection,
    notice: CustomerNotice,
    body_sealed: dict[str, Any] | None,
    *,
    event_id: UUID,
    at: datetime,
) -> bool:
    """Record a requested notice; False if its `notice_id` is already known (a request sent
    twice is one notice)."""
    inserted = await conn.execute(
        insert(t)
        .values(
            notice_id=notice.notice_id,
            subject_id=notice.subject_id,
            kind=notice.kind.value,
            title=notice.title,
            body_sealed=null() if body_sealed is None else body_sealed,  # SQL NULL, not JSON
            state=notice.state.value,
            reason=notice.reason,
            attempts=notice.attempts,
            next_attempt_at=notice.next_attempt_at,
            requested_by_event=event_id,
            requested_at=at,
            updated_at=at,
        )
        .on_conflict_do_nothing(index_elements=["notice_id"])
        .returning(t.c.notice_id)
    )
    return inserted.first() is not None


async def claim_due(
    conn: AsyncConnection, now: datetime, limit: int
) -> list[tuple[CustomerNotice, dict[str, Any] | None]]:
    """Due notices with their sealed bodies, locked for the caller's transaction; rows
    another sender holds are skipped, not waited for."""
    rows = await conn.execute(
        select(t)
        .where(t.c.next_attempt_at.is_not(None), t.c.next_attempt_at <= now)
        .order_by(t.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(_notice(r), r.body_sealed) for r in rows]


async def save(
    conn: AsyncConnection, notice: CustomerNotice, was: CustomerNotice, at: datetime
) -> bool:
    """Write the notice's new state if the row is still as `was` (state and attempts);
    False if another sender moved it meanwhile. A notice with nothing left to do loses its
    body: it will not be sent again (loans' log keeps its own sealed copy)."""
    values: dict[str, Any] = {
        "state": notice.state.value,
        "attempts": notice.attempts,
        "reason": notice.reason,
        "next_attempt_at": notice.next_attempt_at,
        "updated_at": at,
    }
    if notice.next_attempt_at is None:  # completed, not needed, or failed for good
        values["body_sealed"] = null()
    changed = await conn.execute(
        update(t)
        .where(
            t.c.notice_id == notice.notice_id,
            t.c.state == was.state.value,
            t.c.attempts == was.attempts,
        )
        .values(**values)
    )
    return changed.rowcount == 1


async def find(conn: AsyncConnection, notice_id: UUID) -> CustomerNotice | None:
    row = (await conn.execute(select(t).where(t.c.notice_id == notice_id))).one_or_none()
    return None if row is None else _notice(row)


async def has_body(conn: AsyncConnection, notice_id: UUID) -> bool:
    found = await conn.execute(
        select(t.c.notice_id).where(t.c.notice_id == notice_id, t.c.body_sealed.is_not(None))
    )
    return found.first() is not None


def _notice(row: Row[Any]) -> CustomerNotice:
    return CustomerNotice(
        notice_id=row.notice_id,
        subject_id=row.subject_id,
        kind=NoticeKind(row.kind),
        title=row.title,
        state=NoticeState(row.state),
        attempts=row.attempts,
        reason=row.reason,
        next_attempt_at=row.next_attempt_at,
    )
