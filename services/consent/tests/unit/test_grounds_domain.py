"""Legal-ground invocations in memory: what an invocation must name, its state machine
(four eyes for grounds naming recipients), when it is in effect, and the report's counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from expensura_consent.grounds.domain import (
    TRANSITIONS,
    GroundAction,
    GroundRecord,
    GroundState,
    Grouping,
    InvalidInvocation,
    Invocation,
    check_ground,
    count,
    decide,
    invoke,
    revoke,
)
from expensura_events.catalog.consent import (
    LegalGroundInvocationApproved,
    LegalGroundInvocationRejected,
    LegalGroundInvocationRequested,
    LegalGroundInvoked,
    LegalGroundRevoked,
)
from expensura_events.four_eyes import AlreadyDecided, Approval, Approver, NotAnApprover, Verdict
from expensura_events.vocabulary import ActorKind, LegalGround, Purpose

NOW = datetime(2026, 11, 25, tzinfo=UTC)
ASKED = Invocation(
    subject_id="s",
    purpose=Purpose.DISPUTE_RESOLUTION,
    ground=LegalGround.CRIMINAL_INVESTIGATION,
    evidence_reference="sha256:abc",
    categories=frozenset({"pd:Contact", "pd:LoanRecord"}),
    recipients=frozenset({"court-1"}),
    reason="Production order",
    expires_at=NOW + timedelta(days=30),
)


def ground(**changes: object) -> GroundRecord:
    base = GroundRecord(
        uuid.uuid4(),
        "s",
        Purpose.DISPUTE_RESOLUTION,
        LegalGround.CRIMINAL_INVESTIGATION,
        frozenset({"pd:Contact"}),
        frozenset({"court-1"}),
        NOW + timedelta(days=1),
        False,
        "sha256:abc",
        invoked_by="staff:officer-1",
    )
    return GroundRecord(**{**base.__dict__, **changes})


def officer(staff_id: str = "officer-2", *roles: str, mfa: bool = True) -> Approver:
    return Approver(ActorKind.STAFF, staff_id, frozenset(roles or {"privacy-officer"}), mfa)


@pytest.mark.obligation("USE-11")
def test_consent_is_never_invoked_only_the_ten_grounds_are() -> None:
    with pytest.raises(InvalidInvocation, match="given by the subject"):
        check_ground(LegalGround.CONSENT)
    with pytest.raises(InvalidInvocation):
        invoke(uuid.uuid4(), Invocation(**{**ASKED.__dict__, "ground": LegalGround.CONSENT}), NOW)
    others = [g for g in LegalGround if g is not LegalGround.CONSENT]
    assert len(others) == 10
    assert all(check_ground(g) is g for g in others)


@pytest.mark.obligation("USE-11")
@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"expires_at": NOW}, "future"),
        ({"categories": frozenset()}, "at least one"),
        ({"categories": frozenset({"pd:FacialPrint"})}, "may not use"),
        ({"evidence_reference": "x"}, "evidence"),
        ({"reason": ""}, "why"),
        ({"recipients": frozenset(f"r{i}" for i in range(21))}, "at most"),
    ],
)
def test_an_invocation_without_scope_evidence_reason_or_future_expiry_is_refused(
    change: dict[str, object], why: str
) -> None:
    with pytest.raises(InvalidInvocation, match=why):
        invoke(uuid.uuid4(), Invocation(**{**ASKED.__dict__, **change}), NOW)


def test_an_invocation_is_recorded_with_its_whole_scope() -> None:
    invocation_id = uuid.uuid4()
    event = invoke(invocation_id, ASKED, NOW)
    assert isinstance(event, LegalGroundInvocationRequested)
    assert event.invocation_id == invocation_id and event.ground is ASKED.ground
    assert event.categories == ["pd:Contact", "pd:LoanRecord"] and event.recipients == ["court-1"]
    assert (event.evidence_reference, event.reason, event.expires_at) == (
        ASKED.evidence_reference,
        ASKED.reason,
        ASKED.expires_at,
    )


@pytest.mark.obligation("SEC-2")
def test_a_ground_naming_recipients_is_only_requested_one_for_inside_takes_effect() -> None:
    outside = invoke(uuid.uuid4(), ASKED, NOW)
    assert isinstance(outside, LegalGroundInvocationRequested)
    public = Invocation(**{**ASKED.__dict__, "recipients": frozenset({"public"})})
    assert isinstance(invoke(uuid.uuid4(), public, NOW), LegalGroundInvocationRequested)
    inside = Invocation(**{**ASKED.__dict__, "recipients": frozenset()})
    assert isinstance(invoke(uuid.uuid4(), inside, NOW), LegalGroundInvoked)


def test_the_transitions_are_declared() -> None:
    assert dict(TRANSITIONS) == {
        (GroundState.PENDING, GroundAction.APPROVE): GroundState.ACTIVE,
        (GroundState.PENDING, GroundAction.REJECT): GroundState.REJECTED,
        (GroundState.PENDING, GroundAction.REVOKE): GroundState.REVOKED,
        (GroundState.ACTIVE, GroundAction.REVOKE): GroundState.REVOKED,
    }


@pytest.mark.obligation("SEC-2", "USE-11")
def test_a_pending_ground_has_no_effect_until_a_second_officer_approves_it() -> None:
    pending = ground(approval=Approval.PENDING)
    assert pending.state is GroundState.PENDING and not pending.in_effect_at(NOW)
    assert not ground(approval=Approval.REJECTED).in_effect_at(NOW)
    approval, event = decide(pending, officer(), Verdict.APPROVE, "order checked")
    assert approval is Approval.APPROVED
    assert event == LegalGroundInvocationApproved(
        invocation_id=pending.invocation_id, reason="order checked"
    )
    assert ground(approval=approval).in_effect_at(NOW)
    approval, rejected = decide(pending, officer(), Verdict.REJECT, "no order attached")
    assert approval is Approval.REJECTED
    assert isinstance(rejected, LegalGroundInvocationRejected)


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize(
    "who",
    [
        officer("officer-1"),  # the requester approving their own request
        officer("officer-2", "administrator"),
        officer("officer-2", "risk-analyst"),
        officer("officer-2", mfa=False),
        Approver(ActorKind.USER, "officer-2", frozenset({"privacy-officer"}), True),
    ],
)
def test_only_a_second_officer_with_mfa_decides(who: Approver) -> None:
    for verdict in Verdict:
        with pytest.raises(NotAnApprover):
            decide(ground(approval=Approval.PENDING), who, verdict, "looks fine")


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize(
    "record",
    [
        ground(),  # needed no approval
        ground(approval=Approval.APPROVED),
        ground(approval=Approval.REJECTED),
        ground(approval=Approval.PENDING, revoked=True),  # withdrawn before a decision
    ],
)
def test_a_request_is_decided_once(record: GroundRecord) -> None:
    for verdict in Verdict:
        with pytest.raises(AlreadyDecided):
            decide(record, officer(), verdict, "again")


def test_a_decision_says_why() -> None:
    with pytest.raises(InvalidInvocation, match="why"):
        decide(ground(approval=Approval.PENDING), officer(), Verdict.APPROVE, "  ")


def test_revocation_happens_once() -> None:
    active = ground()
    assert active.state is GroundState.ACTIVE
    assert revoke(active) == LegalGroundRevoked(
        invocation_id=active.invocation_id, reason="revoked by officer"
    )
    assert ground(revoked=True).state is GroundState.REVOKED
    assert revoke(ground(revoked=True)) is None
    assert revoke(ground(approval=Approval.PENDING)) is not None  # withdrawn
    assert revoke(ground(approval=Approval.REJECTED)) is None


@pytest.mark.obligation("USE-11")
def test_a_ground_is_in_effect_until_revoked_or_expired_and_only_within_its_scope() -> None:
    assert ground().in_effect_at(NOW)
    assert not ground(revoked=True).in_effect_at(NOW)
    assert not ground(expires_at=NOW).in_effect_at(NOW)
    g = ground()
    assert g.covers(Purpose.DISPUTE_RESOLUTION, {"pd:Contact"}, "court-1")
    assert g.covers(Purpose.DISPUTE_RESOLUTION, {"pd:Contact"}, None)
    assert not g.covers(Purpose.DISPUTE_RESOLUTION, {"pd:Contact"}, "press")
    assert not g.covers(Purpose.DISPUTE_RESOLUTION, {"pd:OfficialID"}, "court-1")
    assert not g.covers(Purpose.MARKETING, {"pd:Contact"}, None)


def test_the_report_counts_per_ground_or_per_requester() -> None:
    records = [
        ground(),
        ground(ground=LegalGround.OTHER_LAW),
        ground(invoked_by="staff:officer-2"),
        ground(approval=Approval.APPROVED),
        ground(approval=Approval.PENDING),  # no processing yet
        ground(approval=Approval.REJECTED),  # none ever
    ]
    assert count(records, Grouping.GROUND) == {"criminal-investigation": 3, "other-law": 1}
    assert count(records, Grouping.REQUESTER) == {"staff:officer-1": 3, "staff:officer-2": 1}
