"""Identity carries out the key rotation an incident asks of it (SEC-4): a request
(`incident.ContainmentRequested`) whose measure is rotate-key and whose owner is identity
names one of identity's access-token signing keys (target: its `kid`). The key is retired:
distrusted, no longer published, never signing again; the next token is signed by a new
key. Recorded as `identity.SigningKeyRetired` naming the incident. An unknown key is parked
as a dead letter for an operator.

The request's checks and once-only application: `expensura_events.containment`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_response import ContainmentMeasure, ContainmentRequested
from expensura_events.containment import ContainmentProjection
from expensura_events.envelope import EventEnvelope
from expensura_events.topology import ServiceName
from expensura_identity.auth import service


class TokenKeyContainment(ContainmentProjection):
    name = "token-key-containment"
    owner = ServiceName.IDENTITY
    measure = ContainmentMeasure.ROTATE_KEY

    async def carry_out(
        self, conn: AsyncConnection, asked: ContainmentRequested, request: EventEnvelope
    ) -> None:
        await service.retire_key_for_incident(
            self.rt,
            conn,
            asked.target,
            incident_id=asked.incident_id,
            by=request.actor,  # the responder who asked: the audit trail's who
            causation_id=request.event_id,
        )
