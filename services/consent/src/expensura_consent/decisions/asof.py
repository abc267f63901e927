"""As-of answers from the log: replay a subject's consent events up to an instant."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from expensura_events.catalog.consent import (
    ConsentExpired,
    ConsentGiven,
    ConsentWithdrawn,
    LegalGroundInvoked,
    LegalGroundRevoked,
)
from expensura_events.envelope import EventEnvelope
from expensura_events.vocabulary import Purpose

Found = tuple[str, UUID, str | None, str | None, UUID]


def basis_as_of(events: list[EventEnvelope], purpose: Purpose, at: datetime) -> Found | None:
    """The consent (preferred) or ground in effect at `at`: (kind, id, ground, evidence, event)."""
    consents: dict[UUID, tuple[ConsentGiven, UUID]] = {}
    grounds: dict[UUID, tuple[LegalGroundInvoked, UUID]] = {}
    for event in sorted(events, key=lambda e: e.sequence or 0):
        if event.recorded_at is not None and event.recorded_at > at:
            break
        p = event.payload
        if isinstance(p, ConsentGiven) and p.purpose == purpose:
            consents[p.consent_id] = (p, event.event_id)
        elif isinstance(p, ConsentWithdrawn | ConsentExpired):
            consents.pop(p.consent_id, None)
        elif isinstance(p, LegalGroundInvoked) and p.purpose == purpose:
            grounds[p.invocation_id] = (p, event.event_id)
        elif isinstance(p, LegalGroundRevoked):
            grounds.pop(p.invocation_id, None)
    for given, event_id in consents.values():
        if given.expires_at is None or given.expires_at > at:
            return ("consent", given.consent_id, None, None, event_id)
    for invoked, event_id in grounds.values():
        if invoked.expires_at > at:
            return (
                "legal-ground",
                invoked.invocation_id,
                invoked.ground.value,
                invoked.evidence_reference,
                event_id,
            )
    return None
