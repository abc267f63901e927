"""Profile rules: corrections of contact details (RGT-2); IDFA only with tracking permission
(COL-1); interaction events stripped of every identifier before anything is stored (COL-3).
Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.obligations import enforces
from expensura_events.vocabulary import CollectionChannel
from expensura_identity.accounts.domain import InvalidAccountDetails, checked_contact

# Anything an app might send that could single a person out. Dropped, never stored.
IDENTIFIERS = frozenset(
    {
        "user_id",
        "account_id",
        "device_id",
        "idfa",
        "idfv",
        "ip",
        "ip_address",
        "email",
        "phone",
        "session_id",
        "advertising_id",
        "location",
        "latitude",
        "longitude",
        "user_agent",
    }
)
KEPT = ("type", "screen", "element")


class TrackingNotAllowed(ValueError):
    pass


@enforces("RGT-2")
def correction(email: str | None, phone: str | None) -> ContactDetailsCorrected:
    """A correction of the e-mail, the phone or both: the event every copy follows."""
    if email is None and phone is None:
        raise InvalidAccountDetails("send an email or a phone")
    email, phone = checked_contact(email, phone)
    return ContactDetailsCorrected(
        email=email, phone=phone, channel=CollectionChannel.PROVIDED_BY_USER
    )


@enforces("COL-1")
def check_device(tracking_allowed: bool, idfa: str | None) -> None:
    if idfa is not None and not tracking_allowed:
        raise TrackingNotAllowed("an IDFA may only be sent when the user allowed tracking")


@enforces("COL-3")
def anonymise(interaction: dict[str, Any]) -> dict[str, Any]:
    """Keep the kind of interaction and where, at hour precision; drop everything else.

    Dropping (rather than pseudonymising) is the choice: no key exists that could link two
    interactions, or an interaction to a person, ever again."""
    at: datetime = interaction["occurred_at"]
    return {k: interaction.get(k) for k in KEPT} | {
        "hour": at.replace(minute=0, second=0, microsecond=0)
    }


def device_stream(device_id: UUID) -> str:
    return f"device-{device_id}"


def feedback_stream(feedback_id: UUID) -> str:
    return f"feedback-{feedback_id}"
