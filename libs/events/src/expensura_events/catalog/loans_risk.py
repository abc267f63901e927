"""Events of fraud and risk signals on loan applications (USE-6; USE-2's fraud detection):
a signal raised, the application held for a risk analyst's review, the review's outcome.

A signal's evidence holds counts, windows and loan ids only, readable so the review queue
and the risk reports can follow them without anyone unsealing. The pseudonymous ids a signal
names (a device's or a bank card's hash) link it to the applicant: they sit in their own
fields, sealed with the subject's key, each under its own category.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import DataCategory, Grade


class RiskSignalKind(StrEnum):
    """What a signal says about an application (wire values)."""

    DEVICE_VELOCITY = "device-velocity"
    CARD_VELOCITY = "card-velocity"
    SUBJECT_VELOCITY = "subject-velocity"
    DEVICE_ON_MANY_ACCOUNTS = "device-on-many-accounts"
    PAYOUT_ACCOUNT_CHANGED = "payout-account-changed-before-disbursement"
    UNVERIFIED_DEVICE_OWNER = "unverified-device-owner"


class ReviewOutcome(StrEnum):
    """How a risk analyst concluded a review."""

    CLEARED = "cleared"
    CONFIRMED_FRAUD = "confirmed-fraud"


# Pseudonymous identifiers: not the raw device id or card number, but they single out one
# device or card, and so the person behind it.
DeviceId = Annotated[
    str, PersonalData(DataCategory.DEVICE_BASED, Grade.PERSONAL), Field(max_length=128)
]
CardFingerprint = Annotated[
    str, PersonalData(DataCategory.BANK_ACCOUNT, Grade.PERSONAL), Field(max_length=128)
]
# Counts, windows, loan ids: small and flat.
Evidence = Annotated[dict[str, int | str], Field(max_length=10)]
StaffId = Annotated[str, Field(min_length=1, max_length=100)]


@event_type("loans.RiskSignalRaised", source="loans")
class RiskSignalRaised(DomainEvent):
    application_id: UUID
    kind: RiskSignalKind
    evidence: Evidence
    device_id: DeviceId | None = None
    card_fingerprint: CardFingerprint | None = None


@event_type("loans.ApplicationHeldForReview", source="loans")
class ApplicationHeldForReview(DomainEvent):
    """A signal fired: nothing proceeds until a risk analyst concludes the review."""

    application_id: UUID
    kinds: list[RiskSignalKind] = Field(min_length=1, max_length=len(RiskSignalKind))


@event_type("loans.RiskReviewConcluded", source="loans")
class RiskReviewConcluded(DomainEvent):
    application_id: UUID
    outcome: ReviewOutcome
    reviewer_staff_id: StaffId
