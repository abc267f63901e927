"""Opening an account: the rules, with no framework in sight."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.envelope import REDACTED, EventEnvelope
from expensura_events.vocabulary import CollectionChannel

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class InvalidAccountDetails(ValueError):
    pass


@dataclass(frozen=True)
class OpenAccount:
    account_id: UUID
    email: str
    phone: str | None
    channel: CollectionChannel = CollectionChannel.PROVIDED_BY_USER


def normalise_email(email: str) -> str:
    return email.strip().lower()


def checked_contact(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    """Contact details as stored: the e-mail normalised; both validated when given."""
    normalised = normalise_email(email) if email is not None else None
    if normalised is not None and not _EMAIL.match(normalised):
        raise InvalidAccountDetails("email is not a valid address")
    if phone is not None and not _E164.match(phone):
        raise InvalidAccountDetails("phone must be in E.164 form, e.g. +14155550100")
    return normalised, phone


def open_account(cmd: OpenAccount) -> AccountOpened:
    email, phone = checked_contact(cmd.email, cmd.phone)
    assert email is not None
    return AccountOpened(account_id=cmd.account_id, email=email, phone=phone, channel=cmd.channel)


CONTACT_FIELDS = ("email", "phone")


@dataclass(frozen=True)
class ContactItem:
    value: str
    channel: CollectionChannel
    collected_at: datetime


def current_contact(events: Iterable[EventEnvelope]) -> dict[str, ContactItem]:
    """The latest e-mail and phone from a subject's events (sign-up, then corrections).

    After erasure the events still exist but their personal fields read as the redaction
    marker, and the payloads are built without validation (the marker fits no field's
    rules): a redacted value is no value, and the channel may come back as its plain string.
    """
    out: dict[str, ContactItem] = {}
    for event in events:
        payload = event.payload
        if not isinstance(payload, AccountOpened | ContactDetailsCorrected):
            continue
        for name in CONTACT_FIELDS:
            value = getattr(payload, name, None)
            if isinstance(value, str) and value != REDACTED:
                out[name] = ContactItem(
                    value, CollectionChannel(payload.channel), event.occurred_at
                )
    return out
