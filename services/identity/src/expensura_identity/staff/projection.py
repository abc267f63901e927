"""Identity carries out the containment an incident asks of it (SEC-4): the incident
service records `incident.ContainmentRequested`; a request whose owner is identity and whose
measure is end-staff-sessions ends every session of that staff member (their refresh tokens
revoked), recorded as `identity.StaffSessionsRevoked` naming the incident.

The request's checks and once-only application: `expensura_events.containment`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_response import ContainmentMeasure, ContainmentRequested
from expensura_events.containment import ContainmentProjection
from expensura_events.envelope import EventEnvelope
from expensura_events.topology import ServiceName
from expensura_identity.staff import service


class StaffSessionContainment(ContainmentProjection):
    name = "staff-session-containment"
    owner = ServiceName.IDENTITY
    measure = ContainmentMeasure.END_STAFF_SESSIONS

    async def carry_out(
        self, conn: AsyncConnection, asked: ContainmentRequested, request: EventEnvelope
    ) -> None:
        await service.end_sessions_for_incident(
            self.rt,
            conn,
            asked.target,
            incident_id=asked.incident_id,
            by=request.actor,  # the responder who asked: the audit trail's who
            causation_id=request.event_id,
        )
