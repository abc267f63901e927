"""Containment carried out (SEC-4): the incident asks (`incident.ContainmentRequested`); the
owning service carries the measure out and records its own event naming the incident, with
the request's event id as its causation. Those events come back here, so the incident's
view shows, next to each request, whether and when its owner did it.

The outcome is read from the owner's signed event, never from the request: a request alone
proves only that the team asked. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from expensura_events.catalog.identity import SigningKeyRetired
from expensura_events.catalog.identity_staff import StaffSessionsRevoked
from expensura_events.catalog.incident_response import ContainmentMeasure
from expensura_events.catalog.sharing import PartnerCredentialRevoked
from expensura_events.envelope import EventEnvelope
from expensura_events.obligations import enforces

# The owners' events that carry a containment out, with the measure each carries out.
CARRIED_OUT_BY: Mapping[str, ContainmentMeasure] = {
    PartnerCredentialRevoked.event_type: ContainmentMeasure.REVOKE_PARTNER_CREDENTIAL,
    StaffSessionsRevoked.event_type: ContainmentMeasure.END_STAFF_SESSIONS,
    SigningKeyRetired.event_type: ContainmentMeasure.ROTATE_KEY,
}


@dataclass(frozen=True)
class Outcome:
    """The owner's record that a request was carried out."""

    request_event_id: UUID  # the `ContainmentRequested` it answers (its causation id)
    incident_id: UUID
    measure: ContainmentMeasure
    owner: str  # the service whose signed log recorded it
    event_type: str
    event_id: UUID
    carried_out_at: datetime


def _get(payload: object, name: str) -> object:
    return payload.get(name) if isinstance(payload, dict) else getattr(payload, name, None)


@enforces("SEC-4")
def outcome_of(event: EventEnvelope) -> Outcome | None:
    """The outcome `event` records, or None: an event of another type, a revocation not done
    for an incident (an officer's own), or one that does not say which request it answers."""
    measure = CARRIED_OUT_BY.get(event.event_type)
    incident_id = _get(event.payload, "incident_id")
    if measure is None or incident_id is None or event.causation_id is None:
        return None
    return Outcome(
        request_event_id=event.causation_id,
        incident_id=incident_id if isinstance(incident_id, UUID) else UUID(str(incident_id)),
        measure=measure,
        owner=event.source,
        event_type=event.event_type,
        event_id=event.event_id,
        carried_out_at=event.occurred_at,
    )
