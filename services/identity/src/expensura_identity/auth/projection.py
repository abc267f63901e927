"""Identity carries out the key rotation an incident asks of it (SEC-4): a request
(`incident.ContainmentRequested`) whose measure is rotate-key and whose owner is identity
names one of identity's access-token signing keys (target: its `kid`). The key is retired:
distrusted, no longer published, never signing again; the next token is signed by a new
key. Recorded as `identity.SigningKeyRetired` naming the incident. An unknown key is parked
as a dead letter for an operator.

Only incident's signed records count (the runner verifies each against the topic's owner),
and the inbox applies each request once: a redelivered request records nothing twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_response import ContainmentMeasure, ContainmentRequested
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.runtime import ServiceRuntime
from expensura_events.topology import ServiceName
from expensura_identity.auth import service


class TokenKeyContainment(Projection):
    name = "token-key-containment"
    sources = (ServiceName.INCIDENT.value,)
    tables = ()  # a retired key is a fact, not a read model: a rebuild finds it retired
    event_types = frozenset({ContainmentRequested.event_type})

    rt: ServiceRuntime

    def bind(self, runtime: Any) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        asked = event.payload
        if not (
            isinstance(asked, ContainmentRequested)
            and asked.owner == ServiceName.IDENTITY
            and asked.measure == ContainmentMeasure.ROTATE_KEY
        ):
            return
        await service.retire_key_for_incident(
            self.rt,
            conn,
            asked.target,
            incident_id=asked.incident_id,
            by=event.actor,  # the responder who asked: the audit trail's who
            causation_id=event.event_id,
        )
