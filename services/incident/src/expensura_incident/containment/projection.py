"""The owners' containment events, back on the incident (SEC-4, `domain.outcome_of`).

Each record is verified (signed by the service whose topic delivered it) before it applies,
so an outcome is the owner's word, not anyone's who can write to a topic. It reads no
personal value (ids and times), so it opens no other service's keys."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.topology import ServiceName
from expensura_incident.containment import store
from expensura_incident.containment.domain import CARRIED_OUT_BY, outcome_of
from expensura_incident.tables import containment_outcomes


class ContainmentOutcomes(Projection):
    name = "containment-outcomes"
    sources = (ServiceName.SHARING_GATEWAY.value, ServiceName.IDENTITY.value)
    tables = (containment_outcomes,)
    event_types = frozenset(CARRIED_OUT_BY)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if (outcome := outcome_of(event)) is not None:
            await store.record(conn, outcome)
