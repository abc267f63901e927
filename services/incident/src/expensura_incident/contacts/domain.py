"""Notification contacts: what the incident service keeps of a subject's contact details,
and what an operator may see of them. Pure: no framework, no database.

The values follow identity's events through the shared fold (`expensura_events.contacts`),
so a correction means here what it means in identity (RGT-2). They are kept sealed with the
subject's key; an address is compared through a keyed HMAC, never a bare hash (a hash of an
e-mail address is reversed by hashing candidate addresses)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from expensura_events.catalog.identity_notifications import NotificationPreferencesSet
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.contacts import contact_changes
from expensura_events.envelope import REDACTED, EventEnvelope


class UnknownSubject(Exception):
    pass


class UnusableContact(ValueError):
    """A contact value no notice could be sent to (control characters): not kept."""


@dataclass(frozen=True)
class ContactUpdate:
    """One contact event's effect on the subject's row: the fields it sets (a value whose
    key was destroyed reads as redacted and sets nothing) and where it came from."""

    subject_id: str
    values: dict[str, str]
    event_id: UUID
    at: datetime


def contact_update(event: EventEnvelope) -> ContactUpdate | None:
    """The update a contact event makes; None for any other event. Raises UnusableContact
    for a value with control characters (the runner parks the event: it is never applied)."""
    changes = contact_changes(event)
    if changes is None or event.subject_id is None:
        return None
    values = {name: item.value for name, item in changes.items()}
    for name, value in values.items():
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
            raise UnusableContact(f"the {name} holds a control character")
    return ContactUpdate(event.subject_id, values, event.event_id, event.occurred_at)


@dataclass(frozen=True)
class PreferencesUpdate:
    """A `NotificationPreferencesSet`'s effect on the subject's row: the channel order and
    language (readable preferences; an older event without a language clears it), and the
    push token and mailing address (None: no longer on file; one that reads as redacted,
    its key destroyed, is left out: it sets nothing)."""

    subject_id: str
    channels: tuple[NoticeChannel, ...]
    values: dict[str, str | None]
    event_id: UUID
    at: datetime
    language: str | None = None  # the language notices are written in (None: English)


PREFERENCE_FIELDS = ("push_token", "mailing_address")


def preferences_update(event: EventEnvelope) -> PreferencesUpdate | None:
    """The update a preferences event makes; None for any other event. Raises
    UnusableContact for a control character (a mailing address's line breaks aside)."""
    payload = event.payload
    if not isinstance(payload, NotificationPreferencesSet) or event.subject_id is None:
        return None
    values: dict[str, str | None] = {}
    for name in PREFERENCE_FIELDS:
        value = getattr(payload, name, None)
        if value == REDACTED:
            continue  # erased: sets nothing
        if isinstance(value, str) and any(
            (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in value
        ):
            raise UnusableContact(f"the {name} holds a control character")
        values[name] = value
    channels = tuple(NoticeChannel(c) for c in payload.channels)
    language = getattr(payload, "language", None)
    return PreferencesUpdate(
        event.subject_id, channels, values, event.event_id, event.occurred_at, language
    )


def email_hmac(key: bytes, email: str) -> str:
    """The keyed digest an address is compared by (hex HMAC-SHA256)."""
    return hmac.new(key, email.encode(), hashlib.sha256).hexdigest()


def email_matches(key: bytes, stored: str | None, candidate: str) -> bool:
    return stored is not None and hmac.compare_digest(stored, email_hmac(key, candidate))


@dataclass(frozen=True)
class ContactCheck:
    """What an operator sees: enough to check that corrections arrived, not the address."""

    subject_id: str
    email_hmac: str | None
    phone_present: bool
    updated_from_event: UUID
    updated_at: datetime
    # the customer's channel order (None: no choice, the default order), and whether the
    # addresses push and letter need are on file
    notice_channels: tuple[NoticeChannel, ...] | None = None
    push_token_present: bool = False
    mailing_address_present: bool = False
