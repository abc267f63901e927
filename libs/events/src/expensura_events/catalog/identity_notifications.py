"""The customer's notification preferences (USE-10): which channels notices reach them on,
in their order, and the addresses two of those channels need beyond the contact details (the
app's push registration token, a mailing address for letters).

Identity records the choice; every copy follows the latest event (the incident service's
notification contacts do, so notices honour it even while identity is down). The token and
the address are personal data, sealed with the subject's key like the e-mail and phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import CollectionChannel, DataCategory, Grade

# "City, ST 12345" or "City ST 12345-6789": the last line of a U.S. mailing address.
_LAST_LINE = re.compile(r"^(?P<city>[^,]+?),?\s+(?P<state>[A-Z]{2})\s+(?P<zip>\d{5}(?:-\d{4})?)$")


@dataclass(frozen=True)
class MailingAddress:
    """A U.S. mailing address as a letter carries it (USPS Publication 28 order): the
    recipient's name, one or two delivery lines, then city, state and ZIP code."""

    name: str
    line1: str
    line2: str | None
    city: str
    state: str
    zip_code: str

    @classmethod
    def parse(cls, text: str) -> MailingAddress:
        """Raises ValueError for text that is not three or four lines ending in a U.S.
        city, state and ZIP code (the message quotes no part of it)."""
        if any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in text):
            raise ValueError("a mailing address holds a control character")
        lines = [line.strip() for line in text.strip().split("\n")]
        if not 3 <= len(lines) <= 4 or not all(lines):
            raise ValueError("a mailing address is 3 or 4 non-empty lines")
        if any(len(line) > 64 for line in lines) or len(lines[0]) > 40:
            raise ValueError("a mailing address line is too long")
        last = _LAST_LINE.match(lines[-1])
        if last is None:
            raise ValueError("the last line must read 'City, ST 12345'")
        return cls(
            name=lines[0],
            line1=lines[1],
            line2=lines[2] if len(lines) == 4 else None,
            city=last["city"].strip(),
            state=last["state"],
            zip_code=last["zip"],
        )


def _mailing_address(value: str) -> str:
    MailingAddress.parse(value)
    return value


def _unique(channels: list[NoticeChannel]) -> list[NoticeChannel]:
    if len(set(channels)) != len(channels):
        raise ValueError("a channel appears twice")
    return channels


PushToken = Annotated[
    str,
    PersonalData(DataCategory.DEVICE_BASED, Grade.PERSONAL),
    Field(min_length=1, max_length=4096, pattern=r"^[\x21-\x7e]+$"),
]
MailingAddressText = Annotated[
    str,
    PersonalData(DataCategory.CONTACT, Grade.SENSITIVE),
    Field(max_length=300),
    AfterValidator(_mailing_address),
]
# The language notices are written in for the customer (BCP 47: "en", "es", "es-MX"). A
# preference like the channel order, not a contact value: it stays readable.
NoticeLanguage = Annotated[
    str, Field(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
]
ChannelOrder = Annotated[
    list[NoticeChannel], Field(min_length=1, max_length=4), AfterValidator(_unique)
]


@event_type("identity.NotificationPreferencesSet", source="identity")
class NotificationPreferencesSet(DomainEvent):
    """The customer chose the channels notices reach them on, first choice first; the
    event replaces the earlier one whole (a token or address left out is no longer on file).
    The order and the language notices are written in are preferences, not contact values:
    they stay readable."""

    channels: ChannelOrder
    push_token: PushToken | None = None
    mailing_address: MailingAddressText | None = None
    channel: CollectionChannel
    # Added later: events recorded before it read as None (no language given: English).
    language: NoticeLanguage | None = None

    @model_validator(mode="after")
    def _chosen_channels_have_their_address(self) -> NotificationPreferencesSet:
        if NoticeChannel.PUSH in self.channels and self.push_token is None:
            raise ValueError("push needs the app's push token")
        if NoticeChannel.LETTER in self.channels and self.mailing_address is None:
            raise ValueError("letter needs a mailing address")
        return self
