"""Loans' SQL for retention holds: placed on erasure, released when they end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.retention.domain import Hold
from expensura_loans.tables import retention_holds

h = retention_holds


async def place(conn: AsyncConnection, holds: Sequence[Hold]) -> None:
    """Place the holds; a hold placed before stays as it was (one erasure per subject)."""
    if holds:
        rows = [{"subject_id": x.subject_id, "hold": x.hold, "ends_at": x.ends_at} for x in holds]
        await conn.execute(
            upsert(h).values(rows).on_conflict_do_nothing(index_elements=["subject_id", "hold"])
        )


async def ends_of(conn: AsyncConnection, subject_id: str) -> dict[str, datetime]:
    """When each of the subject's holds ends (released or not)."""
    rows = await conn.execute(select(h.c.hold, h.c.ends_at).where(h.c.subject_id == subject_id))
    return {r.hold: r.ends_at for r in rows}


async def unreleased_ended_by(conn: AsyncConnection, now: datetime) -> list[Hold]:
    """Holds not yet released whose end is at or before `now`, oldest end first."""
    rows = await conn.execute(
        select(h.c.subject_id, h.c.hold, h.c.ends_at)
        .where(h.c.released_at.is_(None), h.c.ends_at <= now)
        .order_by(h.c.ends_at)
    )
    return [Hold(r.subject_id, r.hold, r.ends_at) for r in rows]


async def mark_released(conn: AsyncConnection, hold: Hold, at: datetime) -> bool:
    """Record the release, once: False if it was recorded before."""
    done = await conn.execute(
        update(h)
        .where(h.c.subject_id == hold.subject_id, h.c.hold == hold.hold, h.c.released_at.is_(None))
        .values(released_at=at)
    )
    return done.rowcount == 1


async def released_at(conn: AsyncConnection, subject_id: str) -> dict[str, datetime | None]:
    """Each of the subject's holds and when it was released (None: still held)."""
    rows = await conn.execute(select(h.c.hold, h.c.released_at).where(h.c.subject_id == subject_id))
    return {r.hold: r.released_at for r in rows}
