"""Containment carried out (SEC-4): an owner's signed event that names the incident and
answers a request (its causation) is that request's outcome; anything else is not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from expensura_events.catalog.identity import SigningKeyRetired
from expensura_events.catalog.identity_staff import StaffSessionsRevoked
from expensura_events.catalog.incident_response import ContainmentMeasure
from expensura_events.catalog.sharing import PartnerCredentialRevoked
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_incident.containment.domain import outcome_of

pytestmark = pytest.mark.obligation("SEC-4")

AT = datetime(2026, 12, 6, 21, tzinfo=UTC)
INCIDENT, REQUEST = uuid.uuid4(), uuid.uuid4()


def _envelope(
    payload: DomainEvent, source: str, causation: uuid.UUID | None = REQUEST
) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source=source,
        stream_id="containment-test",
        stream_version=0,
        subject_id=None,
        actor=Actor(kind=ActorKind.STAFF, id="staff-1"),
        purpose=Purpose.SECURITY,
        correlation_id=new_event_id(),
        causation_id=causation,
        occurred_at=AT,
        payload=payload,
    )


def _revoked(incident: uuid.UUID | None = INCIDENT) -> PartnerCredentialRevoked:
    return PartnerCredentialRevoked(partner_id="acme", client_id="c-1", incident_id=incident)


def test_the_gateways_revocation_for_the_incident_is_the_requests_outcome() -> None:
    event = _envelope(_revoked(), "sharing-gateway")
    outcome = outcome_of(event)
    assert outcome is not None
    assert outcome.request_event_id == REQUEST
    assert outcome.incident_id == INCIDENT
    assert outcome.measure == ContainmentMeasure.REVOKE_PARTNER_CREDENTIAL
    assert (outcome.owner, outcome.event_id, outcome.carried_out_at) == (
        "sharing-gateway",
        event.event_id,
        AT,
    )


def test_identity_ending_a_staff_members_sessions_for_the_incident_is_its_outcome() -> None:
    ended = StaffSessionsRevoked(
        staff_id="staff-9", reason="incident-containment", sessions=2, incident_id=INCIDENT
    )
    outcome = outcome_of(_envelope(ended, "identity"))
    assert outcome is not None
    assert outcome.measure == ContainmentMeasure.END_STAFF_SESSIONS
    assert outcome.owner == "identity"


def test_identity_retiring_its_signing_key_for_the_incident_is_its_outcome() -> None:
    retired = SigningKeyRetired(kid="kid-7", incident_id=INCIDENT)
    outcome = outcome_of(_envelope(retired, "identity"))
    assert outcome is not None
    assert (outcome.measure, outcome.owner) == (ContainmentMeasure.ROTATE_KEY, "identity")
    assert (outcome.request_event_id, outcome.incident_id) == (REQUEST, INCIDENT)


def test_an_officers_own_revocation_is_no_incidents_outcome() -> None:
    assert outcome_of(_envelope(_revoked(incident=None), "sharing-gateway")) is None


def test_a_revocation_that_answers_no_request_is_not_an_outcome() -> None:
    assert outcome_of(_envelope(_revoked(), "sharing-gateway", causation=None)) is None
