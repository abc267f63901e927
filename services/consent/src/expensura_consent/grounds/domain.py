"""Processing without consent on one of USE-11's ten grounds: what an invocation must name,
when one is in effect, and its events. Pure: no framework, no database.

A ground that names recipients (a partner, the public) releases data outside the company: it
is only requested, and takes effect when a second, different privacy officer approves it
(four eyes, `expensura_events.four_eyes`). A ground for processing inside the company is in
effect at once.

    pending ──(another officer approves)──▶ active ──(an officer revokes it)──▶ revoked
       ├─────(another officer rejects)───▶ rejected
       └─────(an officer withdraws it)───▶ revoked
    active ──(its expiry passes: no event, it simply stops counting)

Revoking a revoked or rejected invocation changes nothing and records nothing; a request is
decided once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from expensura_consent.purposes import domain as purposes
from expensura_events import four_eyes
from expensura_events.catalog.consent import (
    LegalGroundInvocationApproved,
    LegalGroundInvocationRejected,
    LegalGroundInvocationRequested,
    LegalGroundInvoked,
    LegalGroundRevoked,
)
from expensura_events.envelope import LegalBasis
from expensura_events.four_eyes import AlreadyDecided, Approval, Approver, Verdict
from expensura_events.obligations import enforces
from expensura_events.vocabulary import DataCategory, LegalGround, Purpose

# Input limits: what one invocation may name.
MAX_CATEGORIES = 20
MAX_RECIPIENTS = 20
MIN_EVIDENCE_LENGTH = 3
MIN_REASON_LENGTH = 3
REVOKED_BY_OFFICER = "revoked by officer"
# A staff read of a subject's grounds (the report, the basis) is itself recorded (SEC-3):
# what it shows, and why staff read it (auditing processing without consent, a purpose no
# restriction stops).
STAFF_READ_PURPOSE = Purpose.LEGAL_COMPLIANCE
GROUND_READ_FIELDS = ("legal-grounds",)
GROUND_READ_CATEGORIES = (DataCategory.LEGAL_CASE.value,)


class GroundState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    REVOKED = "revoked"


class GroundAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVOKE = "revoke"


TRANSITIONS: Mapping[tuple[GroundState, GroundAction], GroundState] = {
    (GroundState.PENDING, GroundAction.APPROVE): GroundState.ACTIVE,
    (GroundState.PENDING, GroundAction.REJECT): GroundState.REJECTED,
    (GroundState.PENDING, GroundAction.REVOKE): GroundState.REVOKED,  # withdrawn unapproved
    (GroundState.ACTIVE, GroundAction.REVOKE): GroundState.REVOKED,
}
_ACTION = {Verdict.APPROVE: GroundAction.APPROVE, Verdict.REJECT: GroundAction.REJECT}


class Grouping(StrEnum):
    """How the report counts invocations."""

    GROUND = "ground"
    REQUESTER = "requester"


class InvalidInvocation(ValueError):
    """The invocation cannot be recorded; nothing was."""


class InvocationNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Invocation:
    """What an officer asks for: a ground, its evidence and reason, its scope and expiry."""

    subject_id: str
    purpose: Purpose
    ground: LegalGround
    evidence_reference: str
    categories: frozenset[str]
    recipients: frozenset[str]
    reason: str
    expires_at: datetime


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
    reason: str = ""
    invoked_by: str = ""
    created_at: datetime | None = None
    approval: Approval = Approval.NOT_REQUIRED
    decided_by: str | None = None
    decided_at: datetime | None = None

    @property
    def state(self) -> GroundState:
        if self.revoked:
            return GroundState.REVOKED
        if self.approval is Approval.PENDING:
            return GroundState.PENDING
        if self.approval is Approval.REJECTED:
            return GroundState.REJECTED
        return GroundState.ACTIVE

    def in_effect_at(self, now: datetime) -> bool:
        """Whether the invocation counts at `now`: approved if it needed approval, not
        revoked, not expired. The one test of a ground's validity (decisions and the as-of
        fold both ask it)."""
        return self.state is GroundState.ACTIVE and self.expires_at > now

    def covers(self, purpose: Purpose, categories: set[str], recipient: str | None) -> bool:
        return (
            self.purpose == purpose
            and categories <= self.categories
            and (recipient is None or recipient in self.recipients)
        )


def ground_stream(invocation_id: UUID) -> str:
    """One invocation: invoked, then perhaps revoked."""
    return f"ground-{invocation_id}"


def basis(ground: LegalGround, invocation_id: UUID) -> LegalBasis:
    """The basis events record: the ground and the invocation that holds its evidence. The
    evidence itself is free text about the subject's case and travels only sealed, in the
    invocation's own event (SEC-1); an envelope's basis is never sealed."""
    return LegalBasis(ground=ground, reference=f"invocation:{invocation_id}")


@enforces("USE-11")
def check_ground(ground: LegalGround) -> LegalGround:
    """Consent is the subject's to give, never an officer's to invoke."""
    if ground is LegalGround.CONSENT:
        raise InvalidInvocation("consent is given by the subject, not invoked")
    return ground


@enforces("SEC-2")
def approval_needed(invocation: Invocation) -> Approval:
    """Every recipient a ground may name is outside the company (a registered partner or the
    public): naming any needs a second officer's approval."""
    return Approval.PENDING if invocation.recipients else Approval.NOT_REQUIRED


@enforces("USE-11", "SEC-2")
def invoke(
    invocation_id: UUID, invocation: Invocation, now: datetime
) -> LegalGroundInvoked | LegalGroundInvocationRequested:
    """The event that records the invocation: in effect at once for processing inside the
    company, only requested when it names recipients. Raises InvalidInvocation."""
    check_ground(invocation.ground)
    if invocation.expires_at <= now:
        raise InvalidInvocation("expires_at must be in the future")
    if len(invocation.evidence_reference) < MIN_EVIDENCE_LENGTH:
        raise InvalidInvocation("name the evidence (e.g. the hash of a court order)")
    if len(invocation.reason) < MIN_REASON_LENGTH:
        raise InvalidInvocation("say why")
    if not invocation.categories:
        raise InvalidInvocation("name at least one data category")
    if len(invocation.categories) > MAX_CATEGORIES or len(invocation.recipients) > MAX_RECIPIENTS:
        raise InvalidInvocation(f"name at most {MAX_CATEGORIES} categories and recipients each")
    if (why := purposes.refusal(invocation.purpose, set(invocation.categories))) is not None:
        raise InvalidInvocation(why)
    kind = (
        LegalGroundInvocationRequested
        if approval_needed(invocation) is Approval.PENDING
        else LegalGroundInvoked
    )
    return kind(
        invocation_id=invocation_id,
        purpose=invocation.purpose,
        ground=invocation.ground,
        evidence_reference=invocation.evidence_reference,
        categories=sorted(invocation.categories),
        recipients=sorted(invocation.recipients),
        reason=invocation.reason,
        expires_at=invocation.expires_at,
    )


@enforces("SEC-2")
def decide(
    record: GroundRecord, approver: Approver, verdict: Verdict, reason: str
) -> tuple[Approval, LegalGroundInvocationApproved | LegalGroundInvocationRejected]:
    """A second officer's decision on a pending request, and its event. Raises NotAnApprover
    (the requester themselves, or not an officer with MFA) or AlreadyDecided (not pending:
    decided, withdrawn, or never needing approval)."""
    if len(reason.strip()) < four_eyes.MIN_REASON_LENGTH:
        raise InvalidInvocation("say why")
    decided = four_eyes.decide(record.approval, record.invoked_by, approver, verdict)
    if (record.state, _ACTION[verdict]) not in TRANSITIONS:  # withdrawn while pending
        raise AlreadyDecided(f"the invocation is {record.state.value}, not pending")
    if decided is Approval.APPROVED:
        return decided, LegalGroundInvocationApproved(
            invocation_id=record.invocation_id, reason=reason
        )
    return decided, LegalGroundInvocationRejected(invocation_id=record.invocation_id, reason=reason)


def revoke(record: GroundRecord) -> LegalGroundRevoked | None:
    """The revocation's event; None when it is revoked already (nothing to record)."""
    if (record.state, GroundAction.REVOKE) not in TRANSITIONS:
        return None
    return LegalGroundRevoked(invocation_id=record.invocation_id, reason=REVOKED_BY_OFFICER)


def count(records: Iterable[GroundRecord], by: Grouping) -> dict[str, int]:
    """Invocations that took effect (not those pending or rejected), per ground or per who
    invoked them."""
    return dict(
        Counter(
            r.ground.value if by is Grouping.GROUND else r.invoked_by
            for r in records
            if four_eyes.in_effect(r.approval)
        )
    )
