"""The known-subjects read model in SQL (written by `KnownSubjects`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
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


# One statement of five arrays per batch: a VALUES list would take 5 parameters a row, and
# SQLAlchemy would compile it anew for every batch. When the batch saw no opening, the
# opening the row has stays (as `seen` leaves it when `opened_on` is None).
SEEN_MANY = text(
    "INSERT INTO known_subjects"
    " (subject_id, account_opened_at, channel, identity_events, last_event_at)"
    " SELECT * FROM unnest(CAST(:subject_ids AS text[]), CAST(:opened_at AS timestamptz[]),"
    " CAST(:channels AS text[]), CAST(:events AS integer[]), CAST(:last_at AS timestamptz[]))"
    " ON CONFLICT (subject_id) DO UPDATE SET"
    " identity_events = known_subjects.identity_events + excluded.identity_events,"
    " last_event_at = excluded.last_event_at,"
    " account_opened_at = CASE WHEN excluded.account_opened_at IS NULL"
    " THEN known_subjects.account_opened_at ELSE excluded.account_opened_at END,"
    " channel = CASE WHEN excluded.account_opened_at IS NULL"
    " THEN known_subjects.channel ELSE excluded.channel END"
)


async def seen_many(conn: AsyncConnection, subjects: dict[str, Seen]) -> None:
    """`seen` for many subjects at once, in one statement, to the same effect."""
    if not subjects:
        return
    seen = list(subjects.values())
    await conn.execute(
        SEEN_MANY,
        {
            "subject_ids": list(subjects),
            "opened_at": [s.account_opened_at for s in seen],
            "channels": [s.channel for s in seen],
            "events": [s.events for s in seen],
            "last_at": [s.last_event_at for s in seen],
        },
    )


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(t))).scalar_one())


async def get(conn: AsyncConnection, subject_id: str) -> KnownSubject | None:
    row = (await conn.execute(select(t).where(t.c.subject_id == subject_id))).one_or_none()
    if row is None:
        return None
    return KnownSubject(row.subject_id, row.account_opened_at, row.identity_events)
