"""Events of real-name verification (USE-1, COL-2). Every identifying field is of the
sensitive grade and travels encrypted with the subject's key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import CollectionChannel, DataCategory, Grade

IdNumber = Annotated[
    str, PersonalData(DataCategory.OFFICIAL_ID, Grade.SENSITIVE), Field(max_length=18)
]
BankCard = Annotated[
    str, PersonalData(DataCategory.BANK_ACCOUNT, Grade.SENSITIVE), Field(max_length=19)
]
Mobile = Annotated[str, PersonalData(DataCategory.CONTACT, Grade.SENSITIVE), Field(max_length=16)]
FaceRef = Annotated[
    str, PersonalData(DataCategory.FACIAL_PRINT, Grade.SENSITIVE), Field(max_length=200)
]
Verification = Annotated[
    str, PersonalData(DataCategory.IDENTITY_VERIFICATION, Grade.SENSITIVE), Field(max_length=2000)
]


@event_type("identity.RealNameVerificationRequested", source="identity")
class RealNameVerificationRequested(DomainEvent):
    request_id: UUID
    id_number: IdNumber
    bank_card: BankCard
    mobile: Mobile
    face_ref: FaceRef | None = None
    channel: CollectionChannel


@event_type("identity.RealNameVerified", source="identity")
class RealNameVerified(DomainEvent):
    """Recorded like OpenID Connect for Identity Assurance `verified_claims`; the
    verification details are sensitive and encrypted (the status is not)."""

    request_id: UUID
    trust_framework: Verification
    verified_at: datetime
    verifier: Verification
    transaction_id: Verification
    evidence: Verification  # JSON list of the evidence the agency checked


@event_type("identity.RealNameVerificationFailed", source="identity")
class RealNameVerificationFailed(DomainEvent):
    request_id: UUID
    reason: str = Field(max_length=200)
