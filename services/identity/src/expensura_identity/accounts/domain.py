"""Accounts: opening one, finding one by e-mail, and releasing its contact details to a
partner on a live consent decision. Pure: no framework, no database."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from expensura_events.catalog.identity import AccountOpened
from expensura_events.contacts import CONTACT_FIELDS
from expensura_events.contracts.decisions import DecisionOut
from expensura_events.obligations import enforces
from expensura_events.vocabulary import CollectionChannel

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class AccountStatus(StrEnum):
    OPEN = "open"


class InvalidAccountDetails(ValueError):
    pass


class EmailTaken(Exception):
    """Another account (or, for a correction, another account) has this e-mail."""


class ReleaseRefused(Exception):
    """No live decision allows this release: nothing leaves identity."""


@dataclass(frozen=True)
class OpenAccount:
    account_id: UUID
    email: str
    phone: str | None
    channel: CollectionChannel = CollectionChannel.PROVIDED_BY_USER


def account_stream(account_id: UUID | str) -> str:
    """An account's sign-up and its corrections."""
    return f"account-{account_id}"


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
    if email is None:  # checked_contact keeps a given e-mail; an account always has one
        raise InvalidAccountDetails("email is required")
    return AccountOpened(account_id=cmd.account_id, email=email, phone=phone, channel=cmd.channel)


# --- finding an account without storing its address ------------------------------------


def lookup_key(lookup_secret: bytes, purpose: str, value: str) -> bytes:
    """A keyed hash of `value` for one purpose: finds a row, reveals nothing without the key.
    Keyed by identity's look-up secret (`rt.secrets`, label lookup-hmac), never the master
    key: that secret survives a master-key rotation, so stored look-ups stay valid."""
    secret = hmac.new(lookup_secret, f"expensura-lookup:{purpose}".encode(), hashlib.sha256)
    return hmac.new(secret.digest(), value.encode(), hashlib.sha256).digest()


def email_lookup(lookup_secret: bytes, email: str) -> bytes:
    return lookup_key(lookup_secret, "email", normalise_email(email))


# --- releasing contact details to a partner ------------------------------------------------


def release_stream(subject_id: str) -> str:
    """Where identity records the releases it refused for a subject."""
    return f"releases-{subject_id}"


def releasable(fields: Sequence[str]) -> list[str]:
    """The asked-for fields identity can release (its contact details); others are ignored."""
    return [f for f in fields if f in CONTACT_FIELDS]


@enforces("SHR-1")
def check_release(decision: DecisionOut, subject_id: str, recipient: str) -> None:
    """Identity releases nothing unless the redeemed decision allows exactly this subject
    and recipient (consent checked it too: this holds even if consent answered wrongly)."""
    if not decision.allowed or decision.subject_id != subject_id or decision.recipient != recipient:
        raise ReleaseRefused("The decision does not allow this subject and recipient.")
