"""The decision rule in memory (the inner ring): consents, grounds, purpose versions and the
subject's restriction as inputs; and the as-of fold of the log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from expensura_consent.decisions.domain import basis_as_of, decide
from expensura_consent.grounds.domain import GroundRecord
from expensura_consent.purposes import domain as taxonomy
from expensura_consent.records.domain import (
    ConsentRecord,
    ConsentStatus,
    InvalidConsent,
    validate_new_consent,
)
from expensura_events.catalog.consent import (
    ConsentExpired,
    ConsentGiven,
    ConsentWithdrawn,
    LegalGroundInvocationApproved,
    LegalGroundInvocationRejected,
    LegalGroundInvocationRequested,
    LegalGroundInvoked,
    LegalGroundRevoked,
)
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.privacy.restrictions import ALLOWED_AFTER_STOP, Restriction
from expensura_events.vocabulary import CollectionChannel, LegalGround, Purpose

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def consent(
    purpose: Purpose,
    version: int,
    *cats: str,
    status: ConsentStatus = ConsentStatus.GIVEN,
    recipients: tuple[str, ...] = (),
    expires: datetime | None = None,
) -> ConsentRecord:
    return ConsentRecord(
        uuid.uuid4(),
        "s",
        purpose,
        version,
        frozenset(cats),
        frozenset(recipients),
        status,
        expires,
        "1",
        CollectionChannel.PROVIDED_BY_USER,
        NOW - timedelta(days=1),
    )


@pytest.mark.obligation("RUL-4")
def test_a_widened_purpose_needs_fresh_consent() -> None:
    v1 = consent(Purpose.PERSONALISATION, 1, "pd:DeviceBased")
    assert taxonomy.current(Purpose.PERSONALISATION).widens(
        taxonomy.HISTORY[Purpose.PERSONALISATION][0]
    )
    refused = decide(Purpose.PERSONALISATION, {"pd:DeviceBased"}, None, NOW, [v1], [])
    assert not refused.allowed and "ask again" in refused.reason
    v2 = consent(Purpose.PERSONALISATION, 2, "pd:DeviceBased")
    assert decide(Purpose.PERSONALISATION, {"pd:DeviceBased"}, None, NOW, [v2], []).allowed


@pytest.mark.obligation("RGT-4")
@pytest.mark.parametrize(
    "status",
    [s for s in ConsentStatus if s not in (ConsentStatus.GIVEN, ConsentStatus.RENEWED_GIVEN)],
)
def test_only_the_given_family_permits_processing(status: ConsentStatus) -> None:
    record = consent(Purpose.MARKETING, 1, "pd:Contact", status=status)
    assert not decide(Purpose.MARKETING, {"pd:Contact"}, None, NOW, [record], []).allowed
    renewed = consent(Purpose.MARKETING, 1, "pd:Contact", status=ConsentStatus.RENEWED_GIVEN)
    assert decide(Purpose.MARKETING, {"pd:Contact"}, None, NOW, [renewed], []).allowed


def test_expired_consent_and_other_categories_and_recipients_do_not_count() -> None:
    old = consent(Purpose.MARKETING, 1, "pd:Contact", expires=NOW - timedelta(seconds=1))
    assert not decide(Purpose.MARKETING, {"pd:Contact"}, None, NOW, [old], []).allowed
    narrow = consent(Purpose.MARKETING, 1, "pd:Contact")
    assert not decide(Purpose.MARKETING, {"pd:Contact", "pd:Name"}, None, NOW, [narrow], []).allowed
    bureau = consent(Purpose.CREDIT_ASSESSMENT, 1, "pd:CreditRecord", recipients=("bureau-a",))
    assert decide(
        Purpose.CREDIT_ASSESSMENT, {"pd:CreditRecord"}, "bureau-a", NOW, [bureau], []
    ).allowed
    assert not decide(
        Purpose.CREDIT_ASSESSMENT, {"pd:CreditRecord"}, "bureau-b", NOW, [bureau], []
    ).allowed


@pytest.mark.obligation("USE-11")
def test_without_consent_only_a_live_legal_ground_allows() -> None:
    ground = GroundRecord(
        uuid.uuid4(),
        "s",
        Purpose.DISPUTE_RESOLUTION,
        LegalGround.CRIMINAL_INVESTIGATION,
        frozenset({"pd:Contact"}),
        frozenset({"court-1"}),
        NOW + timedelta(days=1),
        False,
        "sha256:abc",
    )
    allowed = decide(Purpose.DISPUTE_RESOLUTION, {"pd:Contact"}, "court-1", NOW, [], [ground])
    assert allowed.allowed and allowed.ground == ground
    expired = GroundRecord(**{**ground.__dict__, "expires_at": NOW})
    revoked = GroundRecord(**{**ground.__dict__, "revoked": True})
    for g in (expired, revoked):
        assert not decide(
            Purpose.DISPUTE_RESOLUTION, {"pd:Contact"}, "court-1", NOW, [], [g]
        ).allowed
    assert not decide(Purpose.DISPUTE_RESOLUTION, {"pd:Contact"}, None, NOW, [], []).allowed


def test_disclosure_purposes_need_named_recipients_and_known_categories() -> None:
    with pytest.raises(InvalidConsent, match="recipients"):
        validate_new_consent(Purpose.CREDIT_ASSESSMENT, {"pd:CreditRecord"}, set())
    with pytest.raises(InvalidConsent, match="may not use"):
        validate_new_consent(Purpose.MARKETING, {"pd:OfficialID"}, set())


@pytest.mark.obligation("RUL-2")
@pytest.mark.parametrize("state", [None, *Restriction])
@pytest.mark.parametrize("purpose", [Purpose.MARKETING, Purpose.SECURITY, Purpose.LEGAL_COMPLIANCE])
def test_a_restriction_refuses_what_would_be_allowed_but_for_the_laws_purposes(
    state: Restriction | None, purpose: Purpose
) -> None:
    category = "pd:Contact" if purpose is not Purpose.SECURITY else "pd:DeviceBased"
    record = consent(purpose, 1, category)
    decision = decide(purpose, {category}, None, NOW, [record], [], state)
    if state is None or purpose in ALLOWED_AFTER_STOP:
        assert decision.allowed and decision.consent_id == record.consent_id
    else:
        assert not decision.allowed and decision.consent_id is None
        assert decision.reason == f"processing stopped: the subject's account is {state}"


@pytest.mark.obligation("RUL-2")
@pytest.mark.parametrize("state", list(Restriction))
def test_a_restriction_does_not_hide_why_nothing_allowed(state: Restriction) -> None:
    refused = decide(Purpose.MARKETING, {"pd:Contact"}, None, NOW, [], [], state)
    assert not refused.allowed and refused.reason == "no valid consent and no legal ground"


@pytest.mark.obligation("RUL-1")
def test_no_categories_or_categories_outside_the_purpose_never_allow() -> None:
    record = consent(Purpose.MARKETING, 1, "pd:Contact")
    empty = decide(Purpose.MARKETING, set(), None, NOW, [record], [])
    assert not empty.allowed and "at least one" in empty.reason
    outside = decide(Purpose.MARKETING, {"pd:OfficialID"}, None, NOW, [record], [])
    assert not outside.allowed and outside.reason == "marketing may not use pd:OfficialID"


def logged(seq: int, at: datetime, payload: DomainEvent) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="consent",
        stream_id="s",
        stream_version=seq,
        subject_id="s",
        actor=Actor.system("test"),
        purpose=Purpose.MARKETING,
        correlation_id=new_event_id(),
        payload=payload,
        sequence=seq,
        recorded_at=at,
        occurred_at=at,
    )


@pytest.mark.obligation("RGT-4")
def test_the_as_of_fold_answers_with_the_same_validity_as_decisions() -> None:
    t = [NOW + timedelta(minutes=i) for i in range(8)]
    consent_id, invocation_id = uuid.uuid4(), uuid.uuid4()
    given = ConsentGiven(
        consent_id=consent_id,
        purpose=Purpose.MARKETING,
        purpose_version=1,
        categories=["pd:Contact"],
        policy_version="1",
        channel=CollectionChannel.PROVIDED_BY_USER,
        expires_at=t[6],
    )
    invoked = LegalGroundInvoked(
        invocation_id=invocation_id,
        purpose=Purpose.MARKETING,
        ground=LegalGround.OTHER_LAW,
        evidence_reference="sha256:abc",
        categories=["pd:Contact"],
        reason="a statute",
        expires_at=t[7],
    )
    events = [
        logged(1, t[1], given),
        logged(2, t[2], invoked),
        logged(3, t[3], ConsentWithdrawn(consent_id=consent_id, purpose=Purpose.MARKETING)),
        logged(4, t[4], LegalGroundRevoked(invocation_id=invocation_id, reason="done")),
    ]
    assert basis_as_of(events, Purpose.MARKETING, t[0]) is None
    during = basis_as_of(events, Purpose.MARKETING, t[2])
    assert during is not None and during.consent_id == consent_id  # consent preferred
    assert during.from_event == events[0].event_id
    grounded = basis_as_of(events, Purpose.MARKETING, t[3])
    assert grounded is not None and grounded.ground is not None
    assert grounded.ground.invocation_id == invocation_id and grounded.consent_id is None
    assert basis_as_of(events, Purpose.MARKETING, t[5]) is None
    assert basis_as_of(events, Purpose.CUSTOMER_CARE, t[2]) is None
    # a consent past its own expiry is not in effect, though no event ended it yet
    assert basis_as_of(events[:1], Purpose.MARKETING, t[5]) is not None
    assert basis_as_of(events[:1], Purpose.MARKETING, t[6]) is None
    expired = [
        *events[:1],
        logged(2, t[2], ConsentExpired(consent_id=consent_id, purpose=Purpose.MARKETING)),
    ]
    assert basis_as_of(expired, Purpose.MARKETING, t[3]) is None


@pytest.mark.obligation("RGT-4", "SEC-2")
def test_the_as_of_fold_counts_a_requested_ground_from_its_approval_only() -> None:
    t = [NOW + timedelta(minutes=i) for i in range(6)]
    approved_id, rejected_id = uuid.uuid4(), uuid.uuid4()

    def requested(invocation_id: uuid.UUID) -> LegalGroundInvocationRequested:
        return LegalGroundInvocationRequested(
            invocation_id=invocation_id,
            purpose=Purpose.DISPUTE_RESOLUTION,
            ground=LegalGround.CRIMINAL_INVESTIGATION,
            evidence_reference="sha256:abc",
            categories=["pd:Contact"],
            recipients=["court-1"],
            reason="a production order",
            expires_at=t[5] + timedelta(days=1),
        )

    events = [
        logged(1, t[1], requested(rejected_id)),
        logged(2, t[1], requested(approved_id)),
        logged(3, t[2], LegalGroundInvocationRejected(invocation_id=rejected_id, reason="nope")),
        logged(4, t[3], LegalGroundInvocationApproved(invocation_id=approved_id, reason="fine")),
    ]
    assert basis_as_of(events, Purpose.DISPUTE_RESOLUTION, t[2]) is None  # pending: nothing
    after = basis_as_of(events, Purpose.DISPUTE_RESOLUTION, t[4])
    assert after is not None and after.ground is not None
    assert after.ground.invocation_id == approved_id and after.from_event == events[3].event_id
