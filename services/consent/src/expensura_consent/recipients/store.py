"""The registered partners read model in SQL (written by `RegisteredPartners`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.recipients.domain import Recipient
from expensura_consent.tables import registered_partners

t = registered_partners


async def add_partner(conn: AsyncConnection, recipient: Recipient, registered_at: datetime) -> None:
    """Idempotent: a partner registered twice keeps its first registration."""
    await conn.execute(
        insert(t)
        .values(
            partner_id=recipient.recipient,
            kind=recipient.kind,
            name=recipient.name,
            registered_at=registered_at,
        )
        .on_conflict_do_nothing(index_elements=["partner_id"])
    )


async def registered(conn: AsyncConnection, partner_ids: Iterable[str]) -> set[str]:
    """Which of these ids are registered partners."""
    wanted = sorted(set(partner_ids))
    if not wanted:
        return set()
    rows = await conn.execute(select(t.c.partner_id).where(t.c.partner_id.in_(wanted)))
    return set(rows.scalars())


async def partners(conn: AsyncConnection) -> list[Recipient]:
    rows = await conn.execute(select(t).order_by(t.c.partner_id))
    return [Recipient(r.partner_id, r.kind, r.name) for r in rows]
