"""Profile rules: corrections of contact details (RGT-2); IDFA only with tracking permission
(COL-1); interaction events stripped of every identifier before anything is stored (COL-3).
Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from expensura_events.catalog.identity_notifications import NotificationPreferencesSet
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.catalog.incident_notices import NoticeChannel
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


@enforces("USE-10")
def notification_preferences(
    channels: list[NoticeChannel],
    push_token: str | None,
    mailing_address: str | None,
    *,
    phone_on_file: bool,
    language: str | None = None,
) -> NotificationPreferencesSet:
    """The customer's channel choice, the event every copy follows; each chosen channel
    needs its address (SMS the phone on file, push a token, letter a U.S. mailing address);
    `language` (BCP 47, optional) is the one notices are written in for them.
    Raises InvalidAccountDetails, whose text quotes none of the values."""
    if NoticeChannel.SMS in channels and not phone_on_file:
        raise InvalidAccountDetails("SMS needs a phone: add one to your contact details first")
    try:
        return NotificationPreferencesSet(
            channels=channels,
            push_token=push_token,
            mailing_address=mailing_address,
            channel=CollectionChannel.PROVIDED_BY_USER,
            language=language,
        )
    except ValidationError as exc:
        # the rules' messages only (pydantic keeps the input apart, in `input`)
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise InvalidAccountDetails(reasons) from None


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
