"""Events of the consent service: consent records, legal grounds, policy versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import CollectionChannel, DataCategory, Grade, LegalGround, Purpose

Categories = Annotated[list[str], Field(min_length=1, max_length=20)]
Recipients = Annotated[list[str], Field(max_length=20)]
# Free text about the subject's case: sealed with their key like every personal field.
Evidence = Annotated[
    str, PersonalData(DataCategory.LEGAL_CASE, Grade.SENSITIVE), Field(min_length=3, max_length=500)
]
GroundReason = Annotated[
    str,
    PersonalData(DataCategory.LEGAL_CASE, Grade.SENSITIVE),
    Field(min_length=3, max_length=1000),
]
RevocationReason = Annotated[
    str, PersonalData(DataCategory.LEGAL_CASE, Grade.PERSONAL), Field(max_length=1000)
]


@event_type("consent.ConsentGiven", source="consent")
class ConsentGiven(DomainEvent):
    """DPV ConsentGiven, shaped after ISO/IEC TS 27560 and the Kantara receipt."""

    consent_id: UUID
    purpose: Purpose
    purpose_version: int
    categories: Categories
    recipients: Recipients = []
    policy_version: str = Field(max_length=50)
    channel: CollectionChannel
    expires_at: datetime | None = None
    renewed_from: UUID | None = None


@event_type("consent.ConsentRefused", source="consent")
class ConsentRefused(DomainEvent):
    consent_id: UUID
    purpose: Purpose
    purpose_version: int
    policy_version: str = Field(max_length=50)
    channel: CollectionChannel


@event_type("consent.ConsentWithdrawn", source="consent")
class ConsentWithdrawn(DomainEvent):
    consent_id: UUID
    purpose: Purpose


@event_type("consent.ConsentExpired", source="consent")
class ConsentExpired(DomainEvent):
    consent_id: UUID
    purpose: Purpose


@event_type("consent.LegalGroundInvoked", source="consent")
class LegalGroundInvoked(DomainEvent):
    """Processing without consent on one of USE-11's grounds: who, why, scope, until when."""

    invocation_id: UUID
    purpose: Purpose
    ground: LegalGround
    evidence_reference: Evidence
    categories: Categories
    recipients: Recipients = []
    reason: GroundReason
    expires_at: datetime


@event_type("consent.LegalGroundRevoked", source="consent")
class LegalGroundRevoked(DomainEvent):
    invocation_id: UUID
    reason: RevocationReason


@event_type("consent.LegalGroundInvocationRequested", source="consent")
class LegalGroundInvocationRequested(DomainEvent):
    """An officer asks to invoke a ground that names recipients outside the company (a
    partner, the public); it has no effect until a second officer approves it."""

    invocation_id: UUID
    purpose: Purpose
    ground: LegalGround
    evidence_reference: Evidence
    categories: Categories
    recipients: Recipients = []
    reason: GroundReason
    expires_at: datetime


@event_type("consent.LegalGroundInvocationApproved", source="consent")
class LegalGroundInvocationApproved(DomainEvent):
    """A second officer approved the request: the ground is in effect from now (the actor
    is the approver; the requester is the actor of the request)."""

    invocation_id: UUID
    reason: GroundReason


@event_type("consent.LegalGroundInvocationRejected", source="consent")
class LegalGroundInvocationRejected(DomainEvent):
    invocation_id: UUID
    reason: GroundReason


@event_type("consent.PolicyVersionPublished", source="consent")
class PolicyVersionPublished(DomainEvent):
    version: str = Field(max_length=50)
    sha256: str = Field(max_length=64)
    effective_at: datetime
    summary: str = Field(max_length=2000)


@event_type("consent.PolicyChangeNotificationRequested", source="consent")
class PolicyChangeNotificationRequested(DomainEvent):
    """Tell this subject about a new policy version (exactly once per subject and version);
    the notification channels consume it."""

    version: str = Field(max_length=50)
    effective_at: datetime


@event_type("consent.PolicyVersionAccepted", source="consent")
class PolicyVersionAccepted(DomainEvent):
    version: str = Field(max_length=50)


@event_type("consent.PolicyVersionRefused", source="consent")
class PolicyVersionRefused(DomainEvent):
    """POL-2: the subject disagrees with the policy; identity starts cancellation."""

    version: str = Field(max_length=50)
