"""Customer notices in SQL: the row of each notice, its sealed body, the sender's claim, and
the row of each attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, null, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_notices import NoticeChannel, notice_kind
from expensura_incident.notices.domain import Attempt, CustomerNotice, NoticeState
from expensura_incident.tables import customer_notice_attempts as a
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
        "channel": None if notice.channel is None else notice.channel.value,
        "channel_attempts": notice.channel_attempts,
        "exhausted_channels": [c.value for c in notice.exhausted],
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


async def record_attempts(
    conn: AsyncConnection, subject_id: str, attempts: tuple[Attempt, ...], at: datetime
) -> None:
    """Write each attempt's row: a new one begins (`ongoing`), an ended one gets its state,
    reason, provider reference and end time."""
    for attempt in attempts:
        ongoing = attempt.state is NoticeState.ONGOING
        stmt = insert(a).values(
            notice_id=attempt.notice_id,
            attempt=attempt.number,
            subject_id=subject_id,
            channel=attempt.channel.value,
            state=attempt.state.value,
            reason=attempt.reason,
            provider_ref=attempt.provider_ref,
            started_at=at,
            ended_at=None if ongoing else at,
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["notice_id", "attempt"],
                set_={
                    "state": stmt.excluded.state,
                    "reason": stmt.excluded.reason,
                    "provider_ref": stmt.excluded.provider_ref,
                    "ended_at": stmt.excluded.ended_at,
                },
            )
        )


async def attempts_of(conn: AsyncConnection, notice_id: UUID) -> list[Attempt]:
    rows = await conn.execute(select(a).where(a.c.notice_id == notice_id).order_by(a.c.attempt))
    return [
        Attempt(
            notice_id=r.notice_id,
            number=r.attempt,
            channel=NoticeChannel(r.channel),
            state=NoticeState(r.state),
            reason=r.reason,
            provider_ref=r.provider_ref,
        )
        for r in rows
    ]


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
        kind=notice_kind(row.kind),
        title=row.title,
        state=NoticeState(row.state),
        attempts=row.attempts,
        reason=row.reason,
        next_attempt_at=row.next_attempt_at,
        channel=None if row.channel is None else NoticeChannel(row.channel),
        channel_attempts=row.channel_attempts,
        exhausted=tuple(NoticeChannel(c) for c in row.exhausted_channels),
    )
