"""The gateway carries out the containment an incident asks of it (SEC-4): the incident
service records `incident.ContainmentRequested`; a request whose owner is the gateway and
whose measure is revoke-partner-credential revokes that credential through the one revoke
path, the event naming the incident.

The request's checks and once-only application: `expensura_events.containment`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_response import ContainmentMeasure, ContainmentRequested
from expensura_events.containment import ContainmentProjection
from expensura_events.envelope import EventEnvelope
from expensura_events.topology import ServiceName
from expensura_sharing_gateway.partners import service


class CredentialContainment(ContainmentProjection):
    name = "credential-containment"
    owner = ServiceName.SHARING_GATEWAY
    measure = ContainmentMeasure.REVOKE_PARTNER_CREDENTIAL

    async def carry_out(
        self, conn: AsyncConnection, asked: ContainmentRequested, request: EventEnvelope
    ) -> None:
        await service.contain_credential(
            self.rt,
            conn,
            asked.target,
            incident_id=asked.incident_id,
            by=request.actor,  # the responder who asked: the audit trail's who
            causation_id=request.event_id,
        )
