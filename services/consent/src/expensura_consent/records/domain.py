"""Consent records and the decision rule. Pure: no framework, no database.

States follow W3C DPV's ConsentStatus; only the "given" family permits processing, and the
gate is membership of that family, never equality with one state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from expensura_consent.purposes import taxonomy
from expensura_events.vocabulary import PUBLIC_RECIPIENT, LegalGround, Purpose


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


class InvalidConsent(ValueError):
    pass


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


@dataclass(frozen=True)
class GroundRecord:
    invocation_id: UUID
    subject_id: str
    purpose: Purpose
    ground: LegalGround
    categories: frozenset[str]
    recipients: frozenset[str]
    expires_at: datetime
    revoked: bool
    evidence_reference: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    consent_id: UUID | None = None
    ground: GroundRecord | None = None


def validate_new_consent(purpose: Purpose, categories: set[str], recipients: set[str]) -> None:
    allowed = {c.value for c in taxonomy.current(purpose).categories}
    if not categories:
        raise InvalidConsent("name at least one data category")
    if extra := categories - allowed:
        raise InvalidConsent(f"{purpose.value} may not use {', '.join(sorted(extra))}")
    if taxonomy.current(purpose).discloses and not recipients:
        raise InvalidConsent(f"{purpose.value} discloses data: name the recipients")


def check_recipients(named: set[str], registered: set[str]) -> None:
    """Recipients must exist: registered partners, or the public (PUB-1). A consent naming
    anyone else could never be used, and would record a choice about no one."""
    if unknown := named - registered - {PUBLIC_RECIPIENT}:
        raise InvalidConsent(
            f"not registered partners: {', '.join(sorted(unknown))} (see GET /v1/recipients)"
        )


def valid_at(record: ConsentRecord, now: datetime) -> bool:
    return record.status in VALID_FOR_PROCESSING and (
        record.expires_at is None or record.expires_at > now
    )


def decide(
    purpose: Purpose,
    categories: set[str],
    recipient: str | None,
    now: datetime,
    consents: list[ConsentRecord],
    grounds: list[GroundRecord],
) -> Decision:
    """May these categories be used for this purpose (and disclosed to this recipient)?"""
    allowed = {c.value for c in taxonomy.current(purpose).categories}
    if extra := categories - allowed:
        return Decision(False, f"{purpose.value} may not use {', '.join(sorted(extra))}")
    stale = False
    for record in consents:
        if record.purpose != purpose or not valid_at(record, now):
            continue
        if not categories <= record.categories:
            continue
        if recipient is not None and recipient not in record.recipients:
            continue
        if not taxonomy.consent_still_covers(purpose, record.purpose_version):
            stale = True  # the purpose widened since: fresh consent first (RUL-4)
            continue
        return Decision(True, "consent", consent_id=record.consent_id)
    for ground in grounds:
        if (
            ground.purpose == purpose
            and not ground.revoked
            and ground.expires_at > now
            and categories <= ground.categories
            and (recipient is None or recipient in ground.recipients)
        ):
            return Decision(True, f"legal ground: {ground.ground.value}", ground=ground)
    if stale:
        return Decision(False, "the purpose changed since consent was given: ask again")
    return Decision(False, "no valid consent and no legal ground")
