"""Containment outcomes in SQL: one row per request an owner carried out."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_response import ContainmentMeasure
from expensura_incident.containment.domain import Outcome
from expensura_incident.tables import containment_outcomes


async def record(conn: AsyncConnection, outcome: Outcome) -> None:
    """The first outcome of a request stands (an owner carries a request out once; a rebuild
    or a redelivery finds its row)."""
    await conn.execute(
        insert(containment_outcomes)
        .values(
            request_event_id=outcome.request_event_id,
            incident_id=outcome.incident_id,
            measure=outcome.measure.value,
            owner=outcome.owner,
            event_type=outcome.event_type,
            event_id=outcome.event_id,
            carried_out_at=outcome.carried_out_at,
        )
        .on_conflict_do_nothing(index_elements=["request_event_id"])
    )


async def outcomes(conn: AsyncConnection, incident_id: UUID) -> dict[UUID, Outcome]:
    """The incident's outcomes, by the request each answers."""
    rows = await conn.execute(
        select(containment_outcomes).where(containment_outcomes.c.incident_id == incident_id)
    )
    return {
        r.request_event_id: Outcome(
            request_event_id=r.request_event_id,
            incident_id=r.incident_id,
            measure=ContainmentMeasure(r.measure),
            owner=r.owner,
            event_type=r.event_type,
            event_id=r.event_id,
            carried_out_at=r.carried_out_at,
        )
        for r in rows
    }
