"""A subject's current contact details, folded from identity's events (RGT-2). Pure.

The one definition of "current e-mail and phone", shared like the event catalog: identity
folds a subject's log with it (the profile, a staff look-up, a release to a partner), and
every service that keeps a copy (the incident service's notification contacts) applies the
same step to each event it receives, so a correction means the same thing everywhere.

After erasure the events still exist but their personal fields read as the redaction
marker, and such payloads are built without validation (the marker fits no field's rules):
a redacted value is no value, and the channel may come back as its plain string.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.envelope import REDACTED, EventEnvelope
from expensura_events.obligations import enforces
from expensura_events.registry import personal_categories
from expensura_events.vocabulary import CollectionChannel

CONTACT_FIELDS = ("email", "phone")
CONTACT_EVENTS = (AccountOpened, ContactDetailsCorrected)


def contact_categories(fields: Iterable[str] = CONTACT_FIELDS) -> list[str]:
    """The data categories a read of these contact fields touches (the catalog's markers)."""
    return personal_categories(AccountOpened, fields)


@dataclass(frozen=True)
class ContactItem:
    """One contact value with how and when it was collected (COL-4)."""

    value: str
    channel: CollectionChannel
    collected_at: datetime
    event_id: UUID


@dataclass(frozen=True)
class Contact:
    """The current e-mail and phone; None where there is none (or it was erased)."""

    email: ContactItem | None = None
    phone: ContactItem | None = None

    def items(self) -> list[tuple[str, ContactItem]]:
        """The known fields with their items, as `dict.items()` would list them."""
        return [(name, item) for name in CONTACT_FIELDS if (item := getattr(self, name))]

    def as_values(self) -> dict[str, str | None]:
        """Field → current value (None where unknown), for every contact field."""
        return {
            name: item.value if (item := getattr(self, name)) else None for name in CONTACT_FIELDS
        }


def contact_changes(event: EventEnvelope) -> dict[str, ContactItem] | None:
    """What one event changes in the subject's contact details: None if it is not a contact
    event at all, else the fields it sets (possibly none: a correction of the other field,
    or values unreadable after erasure)."""
    payload = event.payload
    if not isinstance(payload, CONTACT_EVENTS):
        return None
    out: dict[str, ContactItem] = {}
    for name in CONTACT_FIELDS:
        value = getattr(payload, name, None)
        if isinstance(value, str) and value != REDACTED:
            out[name] = ContactItem(
                value, CollectionChannel(payload.channel), event.occurred_at, event.event_id
            )
    return out


@enforces("RGT-2")
def apply_contact(current: Contact, event: EventEnvelope) -> Contact:
    """The fold's step: a later value replaces an earlier one, field by field."""
    changes = contact_changes(event)
    return replace(current, **changes) if changes else current


def current_contact(events: Iterable[EventEnvelope]) -> Contact:
    """The subject's current contact details from their events, in log order."""
    contact = Contact()
    for event in events:
        contact = apply_contact(contact, event)
    return contact
