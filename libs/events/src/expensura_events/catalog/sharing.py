"""Events of the sharing gateway: the only path by which personal data leaves the company."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import CollectionChannel, DataCategory, Grade, Purpose

Fields = Annotated[list[str], Field(max_length=50)]
CaseReference = Annotated[
    str, PersonalData(DataCategory.LEGAL_CASE, Grade.PERSONAL), Field(max_length=200)
]


ApprovalReason = Annotated[str, Field(min_length=3, max_length=1000)]


@event_type("sharing.PartnerRegistered", source="sharing-gateway")
class PartnerRegistered(DomainEvent):
    """The partner is registered: a second officer approved its registration (four eyes),
    or it was registered before approvals were asked."""

    partner_id: str = Field(max_length=100)
    kind: str = Field(max_length=50)
    name: str = Field(max_length=200)


# Four eyes on what lets a partner receive data: one officer requests, a second, different
# officer approves (the actor of the decision) or rejects, once. On approval the act's own
# event (`PartnerRegistered`, `ConfidentialityAgreementSigned`, `PartnerCredentialIssued`)
# follows in the same transaction: that is when it takes effect.


@event_type("sharing.PartnerRegistrationRequested", source="sharing-gateway")
class PartnerRegistrationRequested(DomainEvent):
    partner_id: str = Field(max_length=100)
    kind: str = Field(max_length=50)
    name: str = Field(max_length=200)


@event_type("sharing.PartnerRegistrationApproved", source="sharing-gateway")
class PartnerRegistrationApproved(DomainEvent):
    partner_id: str = Field(max_length=100)
    reason: ApprovalReason


@event_type("sharing.PartnerRegistrationRejected", source="sharing-gateway")
class PartnerRegistrationRejected(DomainEvent):
    partner_id: str = Field(max_length=100)
    reason: ApprovalReason


@event_type("sharing.ConfidentialityAgreementRequested", source="sharing-gateway")
class ConfidentialityAgreementRequested(DomainEvent):
    agreement_id: UUID
    partner_id: str = Field(max_length=100)
    reference: str = Field(max_length=200)
    purposes: list[Purpose]
    fields: Fields
    inbound: bool
    starts_at: datetime
    ends_at: datetime


@event_type("sharing.ConfidentialityAgreementApproved", source="sharing-gateway")
class ConfidentialityAgreementApproved(DomainEvent):
    agreement_id: UUID
    partner_id: str = Field(max_length=100)
    reason: ApprovalReason


@event_type("sharing.ConfidentialityAgreementRejected", source="sharing-gateway")
class ConfidentialityAgreementRejected(DomainEvent):
    agreement_id: UUID
    partner_id: str = Field(max_length=100)
    reason: ApprovalReason


@event_type("sharing.PartnerCredentialRequested", source="sharing-gateway")
class PartnerCredentialRequested(DomainEvent):
    partner_id: str = Field(max_length=100)
    client_id: str = Field(max_length=100)
    scopes: list[str]
    expires_at: datetime


@event_type("sharing.PartnerCredentialApproved", source="sharing-gateway")
class PartnerCredentialApproved(DomainEvent):
    partner_id: str = Field(max_length=100)
    client_id: str = Field(max_length=100)
    reason: ApprovalReason


@event_type("sharing.PartnerCredentialRejected", source="sharing-gateway")
class PartnerCredentialRejected(DomainEvent):
    partner_id: str = Field(max_length=100)
    client_id: str = Field(max_length=100)
    reason: ApprovalReason


@event_type("sharing.ConfidentialityAgreementSigned", source="sharing-gateway")
class ConfidentialityAgreementSigned(DomainEvent):
    agreement_id: UUID
    partner_id: str = Field(max_length=100)
    reference: str = Field(max_length=200)
    purposes: list[Purpose]
    fields: Fields
    inbound: bool
    starts_at: datetime
    ends_at: datetime


@event_type("sharing.PartnerCredentialIssued", source="sharing-gateway")
class PartnerCredentialIssued(DomainEvent):
    partner_id: str = Field(max_length=100)
    client_id: str = Field(max_length=100)
    scopes: list[str]
    expires_at: datetime


@event_type("sharing.PartnerCredentialRevoked", source="sharing-gateway")
class PartnerCredentialRevoked(DomainEvent):
    """Revoked by an officer, or as an incident's containment (`incident_id`, SEC-4)."""

    partner_id: str = Field(max_length=100)
    client_id: str = Field(max_length=100)
    incident_id: UUID | None = None


@event_type("sharing.DisclosureMade", source="sharing-gateway")
class DisclosureMade(DomainEvent):
    """Fields of a subject went to a partner, for a purpose, on a decision (SHR-1)."""

    disclosure_id: UUID
    partner_id: str = Field(max_length=100)
    fields: Fields
    decision_id: UUID
    decided_at: datetime
    basis: dict[str, Any]
    agreement_id: UUID
    case_reference: CaseReference | None = None
    # The partner credential it was pulled with (not personal: the client's id), so that an
    # incident's blast radius can scope to one leaked credential (SEC-4).
    client_id: str | None = Field(default=None, max_length=100)


@event_type("sharing.DisclosureRefused", source="sharing-gateway")
class DisclosureRefused(DomainEvent):
    disclosure_id: UUID
    partner_id: str = Field(max_length=100)
    fields: Fields
    reason: str = Field(max_length=500)
    decision_id: UUID | None = None


@event_type("sharing.InboundDataAccepted", source="sharing-gateway")
class InboundDataAccepted(DomainEvent):
    """COL-4: data about the subject received from a partner, with consent and agreement."""

    partner_id: str = Field(max_length=100)
    channel: CollectionChannel
    category: DataCategory
    value: Annotated[
        str, PersonalData(DataCategory.CREDIT_RECORD, Grade.SENSITIVE), Field(max_length=5000)
    ]
    decision_id: UUID
    agreement_id: UUID


@event_type("sharing.InboundDataRefused", source="sharing-gateway")
class InboundDataRefused(DomainEvent):
    partner_id: str = Field(max_length=100)
    category: DataCategory
    reason: str = Field(max_length=500)


@event_type("sharing.StatisticsReleased", source="sharing-gateway")
class StatisticsReleased(DomainEvent):
    """RUL-3: an aggregate left the company; the ledger keeps what and how it was protected."""

    release_id: UUID
    query: str = Field(max_length=100)
    parameters: dict[str, Any]
    k: int
    cells: int
    suppressed: int


@event_type("sharing.TransferRecorded", source="sharing-gateway")
class TransferRecorded(DomainEvent):
    """TRF-1: data goes to a successor bound by this policy (evidence), or needs re-consent."""

    transfer_id: UUID
    successor: str = Field(max_length=200)
    reason: str = Field(max_length=100)
    commitment_reference: str | None = Field(default=None, max_length=500)
    reconsent_required: bool


@event_type("sharing.PublicDisclosureMade", source="sharing-gateway")
class PublicDisclosureMade(DomainEvent):
    """PUB-1: made public with explicit consent for this request, or a legal mandate (a ground
    a second officer approved), for a case."""

    disclosure_id: UUID
    fields: Fields
    decision_id: UUID
    basis: dict[str, Any]
    case_reference: CaseReference | None = None  # None only in records from before it was asked
