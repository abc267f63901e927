"""The gateway carries out the containment an incident asks of it (SEC-4): the incident
service records `incident.ContainmentRequested`; a request whose owner is the gateway and
whose measure is revoke-partner-credential revokes that credential through the one revoke
path, the event naming the incident.

Only incident's signed records count (the runner verifies each against the topic's owner),
and the inbox applies each request once: a redelivered request revokes nothing twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_response import ContainmentMeasure, ContainmentRequested
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.runtime import ServiceRuntime
from expensura_events.topology import ServiceName
from expensura_sharing_gateway.partners import service


class CredentialContainment(Projection):
    name = "credential-containment"
    sources = (ServiceName.INCIDENT.value,)
    tables = ()  # a revocation is a fact, not a read model: a rebuild finds it done
    event_types = frozenset({ContainmentRequested.event_type})

    rt: ServiceRuntime

    def bind(self, runtime: Any) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        asked = event.payload
        if not (
            isinstance(asked, ContainmentRequested)
            and asked.owner == ServiceName.SHARING_GATEWAY
            and asked.measure == ContainmentMeasure.REVOKE_PARTNER_CREDENTIAL
        ):
            return
        await service.contain_credential(
            self.rt,
            conn,
            asked.target,
            incident_id=asked.incident_id,
            by=event.actor,  # the responder who asked: the audit trail's who
            causation_id=event.event_id,
        )
