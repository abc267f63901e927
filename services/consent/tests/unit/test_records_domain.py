"""The consent rules in memory (the inner ring): taxonomy versions and the decision rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from expensura_consent.purposes import taxonomy
from expensura_consent.records.domain import (
    ConsentRecord,
    ConsentStatus,
    GroundRecord,
    InvalidConsent,
    decide,
    validate_new_consent,
)
from expensura_events.vocabulary import LegalGround, Purpose

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
        uuid.uuid4(), "s", purpose, version, frozenset(cats), frozenset(recipients), status, expires
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
