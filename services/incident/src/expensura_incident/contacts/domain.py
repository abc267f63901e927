"""Notification contacts: what the incident service keeps of a subject's contact details,
and what an operator may see of them. Pure: no framework, no database.

The values follow identity's events through the shared fold (`expensura_events.contacts`),
so a correction means here what it means in identity (RGT-2)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from expensura_events.contacts import contact_changes
from expensura_events.envelope import EventEnvelope


class UnknownSubject(Exception):
    pass


@dataclass(frozen=True)
class ContactUpdate:
    """One contact event's effect on the subject's row: the fields it sets (a value whose
    key was destroyed reads as redacted and sets nothing) and where it came from."""

    subject_id: str
    values: dict[str, str]
    event_id: UUID
    at: datetime


def contact_update(event: EventEnvelope) -> ContactUpdate | None:
    """The update a contact event makes; None for any other event."""
    changes = contact_changes(event)
    if changes is None or event.subject_id is None:
        return None
    return ContactUpdate(
        event.subject_id,
        {name: item.value for name, item in changes.items()},
        event.event_id,
        event.occurred_at,
    )


@dataclass(frozen=True)
class ContactCheck:
    """What an operator sees: enough to check that corrections arrived, not the address."""

    subject_id: str
    email_sha256: str | None
    phone_present: bool
    updated_from_event: UUID
    updated_at: datetime


def contact_check(
    subject_id: str,
    email: str | None,
    phone: str | None,
    updated_from_event: UUID,
    updated_at: datetime,
) -> ContactCheck:
    return ContactCheck(
        subject_id=subject_id,
        email_sha256=hashlib.sha256(email.encode()).hexdigest() if email else None,
        phone_present=phone is not None,
        updated_from_event=updated_from_event,
        updated_at=updated_at,
    )
