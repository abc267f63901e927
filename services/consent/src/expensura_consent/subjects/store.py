"""The known-subjects read model in SQL (written by `KnownSubjects`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.subjects.domain import KnownSubject
from expensura_consent.tables import known_subjects

t = known_subjects


async def seen(
    conn: AsyncConnection,
    subject_id: str,
    at: datetime,
    *,
    opened_on: str | None = None,
) -> None:
    """One more identity event about the subject; `opened_on` (the channel) when it was
    the account's opening."""
    values = {
        "subject_id": subject_id,
        "account_opened_at": at if opened_on is not None else None,
        "channel": opened_on,
        "identity_events": 1,
        "last_event_at": at,
    }
    stmt = insert(t).values(**values)
    update = {
        "identity_events": t.c.identity_events + 1,
        "last_event_at": stmt.excluded.last_event_at,
    }
    if opened_on is not None:
        update |= {
            "account_opened_at": stmt.excluded.account_opened_at,
            "channel": stmt.excluded.channel,
        }
    await conn.execute(stmt.on_conflict_do_update(index_elements=["subject_id"], set_=update))


@dataclass
class Seen:
    """What a run of identity events says about one subject: `seen` applied to each in turn."""

    events: int
    last_event_at: datetime
    account_opened_at: datetime | None = None
    channel: str | None = None


SEEN_ROWS_PER_STATEMENT = 5000  # 5 parameters a row, under the protocol's 32,767


async def seen_many(conn: AsyncConnection, subjects: dict[str, Seen]) -> None:
    """`seen` for many subjects at once, in a statement per 5,000, to the same effect."""
    rows = [
        {
            "subject_id": subject_id,
            "account_opened_at": s.account_opened_at,
            "channel": s.channel,
            "identity_events": s.events,
            "last_event_at": s.last_event_at,
        }
        for subject_id, s in subjects.items()
    ]
    for i in range(0, len(rows), SEEN_ROWS_PER_STATEMENT):
        stmt = insert(t).values(rows[i : i + SEEN_ROWS_PER_STATEMENT])
        opened = stmt.excluded.account_opened_at.is_not(None)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["subject_id"],
                set_={
                    "identity_events": t.c.identity_events + stmt.excluded.identity_events,
                    "last_event_at": stmt.excluded.last_event_at,
                    "account_opened_at": case(
                        (opened, stmt.excluded.account_opened_at), else_=t.c.account_opened_at
                    ),
                    "channel": case((opened, stmt.excluded.channel), else_=t.c.channel),
                },
            )
        )


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(t))).scalar_one())


async def get(conn: AsyncConnection, subject_id: str) -> KnownSubject | None:
    row = (await conn.execute(select(t).where(t.c.subject_id == subject_id))).one_or_none()
    if row is None:
        return None
    return KnownSubject(row.subject_id, row.account_opened_at, row.identity_events)
