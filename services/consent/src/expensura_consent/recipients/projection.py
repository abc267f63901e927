"""Who may be named as a recipient: the partners the sharing gateway registered.

Consent refuses a consent or a legal ground naming a recipient that does not exist. It
learns the partners from the gateway's `sharing.PartnerRegistered` events, never from the
gateway's tables; a partner registered a moment ago may take a moment to arrive.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, DateTime, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.sharing import PartnerRegistered
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection

metadata = MetaData()

registered_partners = Table(
    "registered_partners",
    metadata,
    Column("partner_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)


class RegisteredPartners(Projection):
    name = "registered-partners"
    sources = ("sharing-gateway",)
    tables = (registered_partners,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        payload = event.payload
        if not isinstance(payload, PartnerRegistered):
            return
        await conn.execute(
            insert(registered_partners)
            .values(
                partner_id=payload.partner_id,
                kind=payload.kind,
                name=payload.name,
                registered_at=event.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=["partner_id"])
        )


async def registered(conn: AsyncConnection, partner_ids: Iterable[str]) -> set[str]:
    """Which of these ids are registered partners."""
    wanted = sorted(set(partner_ids))
    if not wanted:
        return set()
    rows = await conn.execute(
        select(registered_partners.c.partner_id).where(registered_partners.c.partner_id.in_(wanted))
    )
    return set(rows.scalars())
