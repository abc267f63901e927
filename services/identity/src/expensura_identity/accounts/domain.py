"""Opening an account: the rules, with no framework in sight."""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from expensura_events.catalog.identity import AccountOpened
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


def open_account(cmd: OpenAccount) -> AccountOpened:
    email = normalise_email(cmd.email)
    if not _EMAIL.match(email):
        raise InvalidAccountDetails("email is not a valid address")
    if cmd.phone is not None and not _E164.match(cmd.phone):
        raise InvalidAccountDetails("phone must be in E.164 form, e.g. +14155550100")
    return AccountOpened(
        account_id=cmd.account_id, email=email, phone=cmd.phone, channel=cmd.channel
    )
