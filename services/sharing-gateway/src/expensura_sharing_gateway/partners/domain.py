"""Partners, agreements, credentials and what each kind may receive. Pure rules.

SHR-2: only necessary data for a specific purpose: per partner kind and purpose an
allow-list of fields (`ALLOW_LISTS`, stated in the README). SHR-3: a confidentiality
agreement is in force only within its term. SHR-4: there is no sale or rent purpose to ask
for, nor a scope for one.

An agreement's state follows from its term and the clock (`AGREEMENT_TRANSITIONS`); a
credential's from its expiry and a revocation (`CREDENTIAL_TRANSITIONS`).

Four eyes (SEC-2): registering a partner, signing an agreement and issuing a credential are
each requested by one privacy officer and take effect only when a second, different officer
approves them (`APPROVAL_TRANSITIONS`: pending → approved | rejected, once). Until then a
partner cannot get a token, an agreement covers nothing and a credential authenticates no
one. Rows from before approvals were asked are `not-required`: in effect as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from expensura_events import four_eyes
from expensura_events.catalog.sharing import (
    ConfidentialityAgreementApproved,
    ConfidentialityAgreementRejected,
    ConfidentialityAgreementRequested,
    ConfidentialityAgreementSigned,
    PartnerCredentialApproved,
    PartnerCredentialIssued,
    PartnerCredentialRejected,
    PartnerCredentialRequested,
    PartnerCredentialRevoked,
    PartnerRegistered,
    PartnerRegistrationApproved,
    PartnerRegistrationRejected,
    PartnerRegistrationRequested,
)
from expensura_events.envelope import DomainEvent
from expensura_events.four_eyes import AlreadyDecided, Approval, Approver, Verdict
from expensura_events.obligations import enforces
from expensura_events.vocabulary import DataCategory, Purpose


class PartnerKind(StrEnum):
    CREDIT_BUREAU = "credit-bureau"
    VERIFICATION_AGENCY = "verification-agency"
    COLLECTION_AGENCY = "collection-agency"
    LAW_FIRM = "law-firm"
    COURT = "court-or-arbitration-body"
    TECHNOLOGY_PROVIDER = "technology-provider"
    RESEARCH_INSTITUTION = "research-institution"
    SUCCESSOR_ENTITY = "successor-entity"


# The fields the gateway can disclose, with their data category (where they come from is
# the adapter's business: today identity's contact details).
FIELD_CATEGORIES: dict[str, DataCategory] = {
    "email": DataCategory.CONTACT,
    "phone": DataCategory.CONTACT,
}

ALLOW_LISTS: dict[PartnerKind, dict[Purpose, frozenset[str]]] = {
    PartnerKind.CREDIT_BUREAU: {Purpose.CREDIT_ASSESSMENT: frozenset({"phone"})},
    PartnerKind.VERIFICATION_AGENCY: {Purpose.IDENTITY_VERIFICATION: frozenset({"phone", "email"})},
    PartnerKind.COLLECTION_AGENCY: {Purpose.DISPUTE_RESOLUTION: frozenset({"phone", "email"})},
    PartnerKind.LAW_FIRM: {Purpose.DISPUTE_RESOLUTION: frozenset({"email"})},
    PartnerKind.COURT: {
        Purpose.DISPUTE_RESOLUTION: frozenset({"email", "phone"}),
        Purpose.LEGAL_COMPLIANCE: frozenset({"email", "phone"}),
    },
    PartnerKind.TECHNOLOGY_PROVIDER: {Purpose.COMMUNICATION: frozenset({"email"})},
    PartnerKind.RESEARCH_INSTITUTION: {},  # aggregates only (RUL-3)
    PartnerKind.SUCCESSOR_ENTITY: {},  # through the transfer workflow (TRF-1)
}

# A credential's scopes: the purposes (there is no sale or rent among them, SHR-4) and
# `inbound`, for data a partner sends us (COL-4).
INBOUND_SCOPE = "inbound"
VALID_SCOPES = frozenset({p.value for p in Purpose} | {INBOUND_SCOPE})


def allow_list(kind: PartnerKind, purpose: Purpose) -> frozenset[str]:
    """What a partner of this kind may receive for the purpose; nothing if not listed."""
    return ALLOW_LISTS[kind].get(purpose, frozenset())


def categories_of(fields: Iterable[str]) -> list[str]:
    return sorted({FIELD_CATEGORIES[f].value for f in fields})


# --- confidentiality agreements (SHR-3) --------------------------------------------------


class AgreementState(StrEnum):
    PENDING = "pending"  # waiting for a second officer: covers nothing
    REJECTED = "rejected"  # never covers anything
    SIGNED = "signed"  # recorded, its term not yet begun
    IN_FORCE = "in-force"
    ENDED = "ended"


class AgreementEvent(StrEnum):
    TERM_STARTS = "term-starts"
    TERM_ENDS = "term-ends"


# Time moves an agreement; nothing else does (a new term is a new agreement).
AGREEMENT_TRANSITIONS: Mapping[tuple[AgreementState, AgreementEvent], AgreementState] = {
    (AgreementState.SIGNED, AgreementEvent.TERM_STARTS): AgreementState.IN_FORCE,
    (AgreementState.IN_FORCE, AgreementEvent.TERM_ENDS): AgreementState.ENDED,
}


class InvalidAgreement(ValueError):
    """The agreement as asked cannot be recorded."""


@dataclass(frozen=True)
class Agreement:
    agreement_id: str
    reference: str
    purposes: frozenset[Purpose]
    fields: frozenset[str]
    inbound: bool
    starts_at: datetime
    ends_at: datetime
    approval: Approval = Approval.NOT_REQUIRED
    requested_by: str = ""

    def state(self, now: datetime) -> AgreementState:
        if self.approval is Approval.PENDING:
            return AgreementState.PENDING
        if self.approval is Approval.REJECTED:
            return AgreementState.REJECTED
        if now < self.starts_at:
            return AgreementState.SIGNED
        if now < self.ends_at:
            return AgreementState.IN_FORCE
        return AgreementState.ENDED

    def active(self, now: datetime) -> bool:
        return self.state(now) is AgreementState.IN_FORCE

    @enforces("SHR-3")
    def covers(self, purpose: Purpose, now: datetime, *, inbound: bool = False) -> bool:
        """In force now, for this purpose, and for data coming in if that is what is asked."""
        return self.active(now) and purpose in self.purposes and (self.inbound or not inbound)


@dataclass(frozen=True)
class AgreementTerms:
    """An agreement as the officer records it: a term that ends after it starts, known
    fields only (kept sorted, once each); the purposes as given."""

    reference: str
    purposes: tuple[Purpose, ...]
    fields: list[str]
    inbound: bool
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        if self.ends_at <= self.starts_at:
            raise InvalidAgreement("ends_at must be after starts_at")
        if unknown := set(self.fields) - set(FIELD_CATEGORIES):
            raise InvalidAgreement(f"unknown fields: {', '.join(sorted(unknown))}")
        object.__setattr__(self, "fields", sorted(set(self.fields)))


# --- credentials -------------------------------------------------------------------------


class CredentialState(StrEnum):
    PENDING = "pending"  # waiting for a second officer: authenticates no one
    REJECTED = "rejected"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class CredentialAction(StrEnum):
    REVOKE = "revoke"


# Expiry is the clock's; revocation is the officer's, and may follow expiry (to record it).
CREDENTIAL_TRANSITIONS: Mapping[tuple[CredentialState, CredentialAction], CredentialState] = {
    (CredentialState.PENDING, CredentialAction.REVOKE): CredentialState.REVOKED,  # withdrawn
    (CredentialState.ACTIVE, CredentialAction.REVOKE): CredentialState.REVOKED,
    (CredentialState.EXPIRED, CredentialAction.REVOKE): CredentialState.REVOKED,
}


class InvalidScopes(ValueError):
    """A credential asked for scopes that do not exist."""


class IllegalTransition(Exception):
    pass


@dataclass(frozen=True)
class Credential:
    client_id: str
    partner_id: str
    scopes: tuple[str, ...]
    expires_at: datetime
    revoked_at: datetime | None = None
    approval: Approval = Approval.NOT_REQUIRED
    requested_by: str = ""

    def state(self, now: datetime) -> CredentialState:
        if self.revoked_at is not None:
            return CredentialState.REVOKED
        if self.approval is Approval.PENDING:
            return CredentialState.PENDING
        if self.approval is Approval.REJECTED:
            return CredentialState.REJECTED
        return CredentialState.ACTIVE if now < self.expires_at else CredentialState.EXPIRED


def credential_transition(state: CredentialState, action: CredentialAction) -> CredentialState:
    try:
        return CREDENTIAL_TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(f"a credential that is {state} cannot take {action}") from None


@enforces("SHR-4")
def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes of a new credential, sorted; only purposes (no sale, no rent) and inbound."""
    asked = set(scopes)
    if unknown := asked - VALID_SCOPES:
        raise InvalidScopes(f"unknown scopes: {', '.join(sorted(unknown))}")
    return sorted(asked)


# --- four eyes ----------------------------------------------------------------------------

# What a second officer's decision does to a partner's registration, an agreement or a
# credential: the one rule every four-eyes act shares.
APPROVAL_TRANSITIONS: Mapping[tuple[Approval, Verdict], Approval] = four_eyes.TRANSITIONS


class InvalidApproval(ValueError):
    """The decision cannot be recorded as asked (no reason)."""


@dataclass(frozen=True)
class PartnerRecord:
    partner_id: str
    kind: PartnerKind
    name: str
    approval: Approval = Approval.NOT_REQUIRED
    requested_by: str = ""

    @property
    def registered(self) -> bool:
        """Whether the partner may get tokens (and consent knows it)."""
        return four_eyes.in_effect(self.approval)


@enforces("SEC-2")
def _decided(
    approval: Approval, requested_by: str, approver: Approver, verdict: Verdict, reason: str
) -> Approval:
    decided = four_eyes.decide(approval, requested_by, approver, verdict)
    if len(reason.strip()) < four_eyes.MIN_REASON_LENGTH:
        raise InvalidApproval("say why")
    return decided


@enforces("SEC-2")
def decide_partner(
    partner: PartnerRecord, approver: Approver, verdict: Verdict, reason: str
) -> tuple[Approval, list[DomainEvent]]:
    """A second officer's decision on a registration, and its events: approved, the partner
    is registered (`PartnerRegistered`, which consent learns recipients from). Raises
    NotAnApprover, AlreadyDecided or InvalidApproval."""
    decided = _decided(partner.approval, partner.requested_by, approver, verdict, reason)
    if decided is Approval.REJECTED:
        return decided, [PartnerRegistrationRejected(partner_id=partner.partner_id, reason=reason)]
    return decided, [
        PartnerRegistrationApproved(partner_id=partner.partner_id, reason=reason),
        registered(partner.partner_id, partner.kind, partner.name),
    ]


@enforces("SEC-2", "SHR-3")
def decide_agreement(
    partner_id: str, agreement: Agreement, approver: Approver, verdict: Verdict, reason: str
) -> tuple[Approval, list[DomainEvent]]:
    """A second officer's decision on an agreement; approved, it is signed."""
    decided = _decided(agreement.approval, agreement.requested_by, approver, verdict, reason)
    agreement_id = UUID(agreement.agreement_id)
    if decided is Approval.REJECTED:
        return decided, [
            ConfidentialityAgreementRejected(
                agreement_id=agreement_id, partner_id=partner_id, reason=reason
            )
        ]
    return decided, [
        ConfidentialityAgreementApproved(
            agreement_id=agreement_id, partner_id=partner_id, reason=reason
        ),
        agreement_signed(partner_id, agreement),
    ]


@enforces("SEC-2")
def decide_credential(
    credential: Credential, approver: Approver, verdict: Verdict, reason: str
) -> tuple[Approval, list[DomainEvent]]:
    """A second officer's decision on a credential; approved, it is issued. A credential
    withdrawn (revoked) while pending cannot be decided."""
    if credential.revoked_at is not None:
        four_eyes.decide(credential.approval, credential.requested_by, approver, verdict)
        raise AlreadyDecided("the credential was revoked")
    decided = _decided(credential.approval, credential.requested_by, approver, verdict, reason)
    ids = {"partner_id": credential.partner_id, "client_id": credential.client_id}
    if decided is Approval.REJECTED:
        return decided, [PartnerCredentialRejected(**ids, reason=reason)]
    return decided, [PartnerCredentialApproved(**ids, reason=reason), credential_issued(credential)]


# --- errors and events -------------------------------------------------------------------


class PartnerExists(Exception):
    pass


class NoSuchPartner(LookupError):
    pass


class NoSuchCredential(LookupError):
    pass


class NoSuchAgreement(LookupError):
    pass


def partner_stream(partner_id: str) -> str:
    """A partner's registration, agreements and credentials."""
    return f"partner-{partner_id}"


def registered(partner_id: str, kind: PartnerKind, name: str) -> PartnerRegistered:
    return PartnerRegistered(partner_id=partner_id, kind=kind.value, name=name)


def registration_requested(
    partner_id: str, kind: PartnerKind, name: str
) -> PartnerRegistrationRequested:
    return PartnerRegistrationRequested(partner_id=partner_id, kind=kind.value, name=name)


def agreement_requested(
    agreement_id: UUID, partner_id: str, terms: AgreementTerms
) -> ConfidentialityAgreementRequested:
    return ConfidentialityAgreementRequested(
        agreement_id=agreement_id,
        partner_id=partner_id,
        reference=terms.reference,
        purposes=list(terms.purposes),
        fields=terms.fields,
        inbound=terms.inbound,
        starts_at=terms.starts_at,
        ends_at=terms.ends_at,
    )


def agreement_signed(partner_id: str, agreement: Agreement) -> ConfidentialityAgreementSigned:
    """The agreement takes effect: a second officer approved it."""
    return ConfidentialityAgreementSigned(
        agreement_id=UUID(agreement.agreement_id),
        partner_id=partner_id,
        reference=agreement.reference,
        purposes=sorted(agreement.purposes),
        fields=sorted(agreement.fields),
        inbound=agreement.inbound,
        starts_at=agreement.starts_at,
        ends_at=agreement.ends_at,
    )


def credential_requested(credential: Credential) -> PartnerCredentialRequested:
    return PartnerCredentialRequested(
        partner_id=credential.partner_id,
        client_id=credential.client_id,
        scopes=list(credential.scopes),
        expires_at=credential.expires_at,
    )


def credential_issued(credential: Credential) -> PartnerCredentialIssued:
    return PartnerCredentialIssued(
        partner_id=credential.partner_id,
        client_id=credential.client_id,
        scopes=list(credential.scopes),
        expires_at=credential.expires_at,
    )


def credential_revoked(
    credential: Credential, incident_id: UUID | None = None
) -> PartnerCredentialRevoked:
    """`incident_id`: revoked as that incident's containment (the audit trail's why)."""
    return PartnerCredentialRevoked(
        partner_id=credential.partner_id, client_id=credential.client_id, incident_id=incident_id
    )
