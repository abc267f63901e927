"""Consent records: their states, what a new one must satisfy, and when one is valid.
Pure: no framework, no database.

States follow W3C DPV's ConsentStatus; only the "given" family permits processing, and the
gate is membership of that family, never equality with one state. A record is created
given (or refused) and ends once:

    given / renewed-given ──(the subject withdraws)──▶ withdrawn
                          └─(its expiry passes)──────▶ expired
    refused: final (a refusal records a choice; it never permits anything)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from expensura_consent.purposes import domain as purposes
from expensura_events.catalog.consent import (
    ConsentExpired,
    ConsentGiven,
    ConsentRefused,
    ConsentWithdrawn,
)
from expensura_events.envelope import LegalBasis
from expensura_events.obligations import enforces
from expensura_events.vocabulary import CollectionChannel, LegalGround, Purpose

# Input limits: what one consent may name.
MAX_CATEGORIES = 20
MAX_RECIPIENTS = 20


class ConsentStatus(StrEnum):
    UNKNOWN = "dpv:ConsentUnknown"
    REQUESTED = "dpv:ConsentRequested"
    REQUEST_DEFERRED = "dpv:ConsentRequestDeferred"
    GIVEN = "dpv:ConsentGiven"
    RENEWED_GIVEN = "dpv:RenewedConsentGiven"
    REFUSED = "dpv:ConsentRefused"
    WITHDRAWN = "dpv:ConsentWithdrawn"
    EXPIRED = "dpv:ConsentExpired"
    INVALIDATED = "dpv:ConsentInvalidated"


VALID_FOR_PROCESSING = frozenset({ConsentStatus.GIVEN, ConsentStatus.RENEWED_GIVEN})


class ConsentAction(StrEnum):
    WITHDRAW = "withdraw"  # the subject's choice (RGT-4)
    EXPIRE = "expire"  # the expiry the subject chose has passed


TRANSITIONS: Mapping[tuple[ConsentStatus, ConsentAction], ConsentStatus] = {
    (ConsentStatus.GIVEN, ConsentAction.WITHDRAW): ConsentStatus.WITHDRAWN,
    (ConsentStatus.RENEWED_GIVEN, ConsentAction.WITHDRAW): ConsentStatus.WITHDRAWN,
    (ConsentStatus.GIVEN, ConsentAction.EXPIRE): ConsentStatus.EXPIRED,
    (ConsentStatus.RENEWED_GIVEN, ConsentAction.EXPIRE): ConsentStatus.EXPIRED,
}


class InvalidConsent(ValueError):
    """The consent asked for cannot be recorded; nothing was."""


class ConsentNotFound(LookupError):
    """No such consent of this subject's (another subject's looks the same as none)."""


class NotActive(Exception):
    """The consent is not in force: it cannot be withdrawn or expire (again)."""

    def __init__(self, status: ConsentStatus) -> None:
        super().__init__(f"The consent is {status}.")
        self.status = status


@dataclass(frozen=True)
class ConsentRecord:
    consent_id: UUID
    subject_id: str
    purpose: Purpose
    purpose_version: int
    categories: frozenset[str]
    recipients: frozenset[str]
    status: ConsentStatus
    expires_at: datetime | None
    policy_version: str
    channel: CollectionChannel
    given_at: datetime


@dataclass(frozen=True)
class ConsentChoice:
    """What the subject chose: give (or refuse) consent to a purpose for these categories
    (and recipients), under a published policy version."""

    purpose: Purpose
    categories: frozenset[str]
    recipients: frozenset[str]
    policy_version: str
    channel: CollectionChannel = CollectionChannel.PROVIDED_BY_USER
    given: bool = True
    expires_at: datetime | None = None


def consent_stream(consent_id: UUID) -> str:
    """One consent record: given or refused, then withdrawn or expired."""
    return f"consent-{consent_id}"


def basis(consent_id: UUID) -> LegalBasis:
    return LegalBasis(ground=LegalGround.CONSENT, reference=str(consent_id))


@enforces("RGT-4")
def valid_at(record: ConsentRecord, now: datetime) -> bool:
    """Whether the record permits processing at `now`: the one test of a consent's validity
    (decisions, the subject's list and the as-of fold all ask it)."""
    return record.status in VALID_FOR_PROCESSING and (
        record.expires_at is None or record.expires_at > now
    )


def transition(status: ConsentStatus, action: ConsentAction) -> ConsentStatus:
    """The state after `action`; raises NotActive when the consent is not in force."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise NotActive(status) from None


@enforces("RUL-4")
def validate_new_consent(
    purpose: Purpose,
    categories: set[str],
    recipients: set[str],
    now: datetime | None = None,
    expires_at: datetime | None = None,
) -> None:
    """A consent names at least one of the purpose's categories, recipients when the
    purpose discloses data, and an expiry (if any) still ahead. Raises InvalidConsent."""
    if not categories:
        raise InvalidConsent("name at least one data category")
    if len(categories) > MAX_CATEGORIES or len(recipients) > MAX_RECIPIENTS:
        raise InvalidConsent(f"name at most {MAX_CATEGORIES} categories and recipients each")
    if (why := purposes.refusal(purpose, categories)) is not None:
        raise InvalidConsent(why)
    if purposes.current(purpose).discloses and not recipients:
        raise InvalidConsent(f"{purpose.value} discloses data: name the recipients")
    if expires_at is not None and now is not None and expires_at <= now:
        raise InvalidConsent("expires_at must be in the future")


def record_choice(
    consent_id: UUID, subject_id: str, choice: ConsentChoice, now: datetime
) -> tuple[ConsentRecord, ConsentGiven | ConsentRefused]:
    """The new record and the event that records it, for a choice already validated. The
    record is tied to the purpose's current version: it covers only what that used."""
    current = purposes.current(choice.purpose)
    record = ConsentRecord(
        consent_id=consent_id,
        subject_id=subject_id,
        purpose=choice.purpose,
        purpose_version=current.version,
        categories=choice.categories,
        recipients=choice.recipients,
        status=ConsentStatus.GIVEN if choice.given else ConsentStatus.REFUSED,
        expires_at=choice.expires_at,
        policy_version=choice.policy_version,
        channel=choice.channel,
        given_at=now,
    )
    if not choice.given:
        return record, ConsentRefused(
            consent_id=consent_id,
            purpose=choice.purpose,
            purpose_version=current.version,
            policy_version=choice.policy_version,
            channel=choice.channel,
        )
    return record, ConsentGiven(
        consent_id=consent_id,
        purpose=choice.purpose,
        purpose_version=current.version,
        categories=sorted(choice.categories),
        recipients=sorted(choice.recipients),
        policy_version=choice.policy_version,
        channel=choice.channel,
        expires_at=choice.expires_at,
    )


@enforces("RGT-4")
def withdraw(record: ConsentRecord) -> tuple[ConsentStatus, ConsentWithdrawn]:
    """The state after the subject's withdrawal and its event; raises NotActive."""
    to = transition(record.status, ConsentAction.WITHDRAW)
    return to, ConsentWithdrawn(consent_id=record.consent_id, purpose=record.purpose)


def expire(record: ConsentRecord) -> tuple[ConsentStatus, ConsentExpired]:
    """The state after its expiry passed and its event; raises NotActive."""
    to = transition(record.status, ConsentAction.EXPIRE)
    return to, ConsentExpired(consent_id=record.consent_id, purpose=record.purpose)
