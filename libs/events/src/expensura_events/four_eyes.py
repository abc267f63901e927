"""Four eyes: an act that releases personal data outside the company is requested by one
officer and takes effect only when a second, different officer approves it. Pure: no
framework, no database. Each feature declares which of its acts need this and keeps its own
states; this module holds the one rule they share.

    pending ──(another officer approves)──▶ approved
       └─────(another officer rejects)────▶ rejected

A request is decided once: approved and rejected are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from expensura_events.obligations import enforces
from expensura_events.vocabulary import ActorKind, StaffRole

# Who may approve: an officer who may release data, never an administrator (SEC-2).
APPROVER_ROLES: frozenset[str] = frozenset({StaffRole.PRIVACY_OFFICER.value})
MIN_REASON_LENGTH = 3


class Approval(StrEnum):
    NOT_REQUIRED = "not-required"  # the act releases nothing outside: in effect at once
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


TRANSITIONS: Mapping[tuple[Approval, Verdict], Approval] = {
    (Approval.PENDING, Verdict.APPROVE): Approval.APPROVED,
    (Approval.PENDING, Verdict.REJECT): Approval.REJECTED,
}


class NotAnApprover(PermissionError):
    """The caller may not decide this request (themselves, no officer role, no MFA)."""


class AlreadyDecided(ValueError):
    """The request is not pending: decided before, or never needed a decision."""


@dataclass(frozen=True)
class Approver:
    """The second officer, as their token says."""

    kind: ActorKind
    id: str
    roles: frozenset[str]
    mfa: bool

    @property
    def actor(self) -> str:
        return f"{self.kind.value}:{self.id}"


def in_effect(approval: Approval) -> bool:
    """Only an act that needed no approval, or got it, counts."""
    return approval in (Approval.NOT_REQUIRED, Approval.APPROVED)


@enforces("SEC-2")
def decide(approval: Approval, requested_by: str, approver: Approver, verdict: Verdict) -> Approval:
    """The request's state after `approver` decides it. `requested_by` is the requester as
    "kind:id". Raises NotAnApprover (a second, different officer with MFA, or nobody) or
    AlreadyDecided (once only)."""
    if approver.kind is not ActorKind.STAFF:
        raise NotAnApprover("only staff decide requests")
    if not approver.mfa:
        raise NotAnApprover("deciding a request needs a second factor")
    if not approver.roles & APPROVER_ROLES:
        raise NotAnApprover(f"needs the role {', '.join(sorted(APPROVER_ROLES))}")
    if approver.actor == requested_by:
        raise NotAnApprover("a second officer must decide: not the one who asked")
    try:
        return TRANSITIONS[(approval, verdict)]
    except KeyError:
        raise AlreadyDecided(f"the request is {approval.value}, not pending") from None
