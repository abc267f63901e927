"""Legal-ground invocations in memory: what an invocation must name, its state machine,
when it is in effect, and the report's counts."""

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
    invoke,
    revoke,
)
from expensura_events.catalog.consent import LegalGroundRevoked
from expensura_events.vocabulary import LegalGround, Purpose

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
    assert event.invocation_id == invocation_id and event.ground is ASKED.ground
    assert event.categories == ["pd:Contact", "pd:LoanRecord"] and event.recipients == ["court-1"]
    assert (event.evidence_reference, event.reason, event.expires_at) == (
        ASKED.evidence_reference,
        ASKED.reason,
        ASKED.expires_at,
    )


def test_revocation_is_the_one_transition_and_happens_once() -> None:
    assert dict(TRANSITIONS) == {(GroundState.ACTIVE, GroundAction.REVOKE): GroundState.REVOKED}
    active = ground()
    assert active.state is GroundState.ACTIVE
    assert revoke(active) == LegalGroundRevoked(
        invocation_id=active.invocation_id, reason="revoked by officer"
    )
    assert ground(revoked=True).state is GroundState.REVOKED
    assert revoke(ground(revoked=True)) is None


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
    ]
    assert count(records, Grouping.GROUND) == {"criminal-investigation": 2, "other-law": 1}
    assert count(records, Grouping.REQUESTER) == {"staff:officer-1": 2, "staff:officer-2": 1}
