"""Identity carries out the containment an incident asks of it (SEC-4): the incident
service records `incident.ContainmentRequested`; a request whose owner is identity and whose
measure is end-staff-sessions ends every session of that staff member (their refresh tokens
revoked), recorded as `identity.StaffSessionsRevoked` naming the incident.

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
from expensura_identity.staff import service


class StaffSessionContainment(Projection):
    name = "staff-session-containment"
    sources = (ServiceName.INCIDENT.value,)
    tables = ()  # ended sessions are facts, not a read model: a rebuild finds them ended
    event_types = frozenset({ContainmentRequested.event_type})

    rt: ServiceRuntime

    def bind(self, runtime: Any) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        asked = event.payload
        if not (
            isinstance(asked, ContainmentRequested)
            and asked.owner == ServiceName.IDENTITY
            and asked.measure == ContainmentMeasure.END_STAFF_SESSIONS
        ):
            return
        await service.end_sessions_for_incident(
            self.rt,
            conn,
            asked.target,
            incident_id=asked.incident_id,
            by=event.actor,  # the responder who asked: the audit trail's who
            causation_id=event.event_id,
        )
