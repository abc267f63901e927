"""The four-eyes rule every feature shares: a second, different officer with MFA decides a
pending request, once."""

from __future__ import annotations

import pytest

from expensura_events.four_eyes import (
    TRANSITIONS,
    AlreadyDecided,
    Approval,
    Approver,
    NotAnApprover,
    Verdict,
    decide,
    in_effect,
)
from expensura_events.vocabulary import ActorKind

ASKER = "staff:officer-1"


def approver(staff_id: str = "officer-2", *roles: str, mfa: bool = True) -> Approver:
    return Approver(ActorKind.STAFF, staff_id, frozenset(roles or {"privacy-officer"}), mfa)


def test_pending_goes_to_approved_or_rejected_and_nowhere_else() -> None:
    assert dict(TRANSITIONS) == {
        (Approval.PENDING, Verdict.APPROVE): Approval.APPROVED,
        (Approval.PENDING, Verdict.REJECT): Approval.REJECTED,
    }
    assert decide(Approval.PENDING, ASKER, approver(), Verdict.APPROVE) is Approval.APPROVED
    assert decide(Approval.PENDING, ASKER, approver(), Verdict.REJECT) is Approval.REJECTED


def test_only_what_needed_no_approval_or_got_it_is_in_effect() -> None:
    assert {a for a in Approval if in_effect(a)} == {Approval.NOT_REQUIRED, Approval.APPROVED}


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize(
    ("who", "why"),
    [
        (approver("officer-1"), "not the one who asked"),
        (approver("officer-2", "administrator"), "role"),
        (approver("officer-2", "security-officer", "customer-service"), "role"),
        (approver(mfa=False), "second factor"),
        (Approver(ActorKind.USER, "officer-2", frozenset({"privacy-officer"}), True), "staff"),
        (Approver(ActorKind.PARTNER, "officer-2", frozenset({"privacy-officer"}), True), "staff"),
    ],
)
def test_the_requester_an_administrator_or_anyone_without_mfa_cannot_decide(
    who: Approver, why: str
) -> None:
    for verdict in Verdict:
        with pytest.raises(NotAnApprover, match=why):
            decide(Approval.PENDING, ASKER, who, verdict)


def test_the_same_id_of_another_kind_is_another_person() -> None:
    assert decide(Approval.PENDING, "user:officer-2", approver(), Verdict.APPROVE)


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize("state", [Approval.NOT_REQUIRED, Approval.APPROVED, Approval.REJECTED])
def test_a_request_is_decided_once(state: Approval) -> None:
    for verdict in Verdict:
        with pytest.raises(AlreadyDecided):
            decide(state, ASKER, approver(), verdict)
