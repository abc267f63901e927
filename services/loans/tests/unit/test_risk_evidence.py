"""What the app presents for the risk signals (USE-6), in memory: an allow-list of two opaque
ids, a card number refused where a fingerprint belongs, the ids keyed before any rule sees
them; the purposes and role of a review; the notice of a refusal after review."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from expensura_events.vocabulary import Purpose, StaffRole
from expensura_loans.risk.domain import (
    FRAUD_REFUSAL_REASON,
    PRESENTED_EVIDENCE,
    REVIEW_PURPOSES,
    ApplicationSeen,
    NotARiskAnalyst,
    NotPresentable,
    PresentedEvidence,
    PurposeNotServed,
    looks_like_card_number,
    presented,
    pseudonymise,
    refusal_notice,
    review_purpose,
    reviewer_role,
)

KEY = b"k" * 32
DEVICE = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
FINGERPRINT = "fp_Xt5EWLLDS7FJjR1c"
NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)


@pytest.mark.obligation("USE-6")
def test_the_evidence_allow_list_is_the_device_and_the_card_fingerprint_only() -> None:
    assert {"device_id", "card_fingerprint"} == PRESENTED_EVIDENCE
    assert set(PresentedEvidence.__dataclass_fields__) == PRESENTED_EVIDENCE
    ok = presented({"device_id": DEVICE, "card_fingerprint": FINGERPRINT})
    assert ok == PresentedEvidence(DEVICE, FINGERPRINT)


@pytest.mark.obligation("USE-6")
@pytest.mark.parametrize("extra", ["idfa", "ip_address", "location", "card_number", "contacts"])
def test_evidence_with_a_field_outside_the_allow_list_fails(extra: str) -> None:
    with pytest.raises(NotPresentable, match=extra):
        presented({"device_id": DEVICE, "card_fingerprint": FINGERPRINT, extra: "x" * 12})


def test_evidence_missing_a_field_fails() -> None:
    with pytest.raises(NotPresentable, match="card_fingerprint"):
        presented({"device_id": DEVICE})


@pytest.mark.obligation("USE-6")
@pytest.mark.parametrize(
    "card", ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"]
)
def test_a_card_number_is_refused_where_a_fingerprint_or_device_id_belongs(card: str) -> None:
    assert looks_like_card_number(card)
    with pytest.raises(NotPresentable) as refused:
        PresentedEvidence(DEVICE, card)
    assert card not in str(refused.value)  # the error never repeats it
    with pytest.raises(NotPresentable):
        PresentedEvidence(card, FINGERPRINT)


@pytest.mark.parametrize(
    "value", ["4111111111111112", "123456789012", "fp_4111111111111111x", DEVICE]
)
def test_digits_that_fail_the_check_digit_or_opaque_ids_are_not_card_numbers(value: str) -> None:
    assert not looks_like_card_number(value)


@pytest.mark.parametrize("bad", ["short", "x" * 129, "has space here", "semi;colon12", ""])
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(NotPresentable):
        PresentedEvidence(bad, FINGERPRINT)


@pytest.mark.obligation("USE-6")
def test_the_ids_are_keyed_with_loans_secret_before_any_rule_sees_them() -> None:
    evidence = PresentedEvidence(DEVICE, FINGERPRINT)
    keyed = pseudonymise(KEY, evidence)
    assert keyed == pseudonymise(KEY, evidence)  # stable: equality is all the rules need
    assert keyed != pseudonymise(b"o" * 32, evidence)  # useless without the key
    assert DEVICE not in keyed.device_id and FINGERPRINT not in keyed.card_fingerprint
    # Each under its own label: equal raw values give different digests.
    same = pseudonymise(KEY, PresentedEvidence(DEVICE, DEVICE))
    assert same.device_id != same.card_fingerprint
    # What the rules accept as a pseudonym, unlike the raw values.
    ApplicationSeen(uuid.uuid4(), "s", keyed.device_id, keyed.card_fingerprint, NOW)
    with pytest.raises(ValueError):
        pseudonymise(b"short", evidence)


@pytest.mark.obligation("USE-6")
@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_review_serves_security_and_credit_assessment_only(purpose: Purpose) -> None:
    if purpose in {Purpose.SECURITY, Purpose.CREDIT_ASSESSMENT}:
        assert review_purpose(purpose) is purpose
    else:
        with pytest.raises(PurposeNotServed):
            review_purpose(purpose)
    assert {Purpose.SECURITY, Purpose.CREDIT_ASSESSMENT} == REVIEW_PURPOSES


@pytest.mark.obligation("USE-6")
@pytest.mark.parametrize("role", [r for r in StaffRole if r is not StaffRole.RISK_ANALYST])
def test_only_the_risk_analyst_role_reviews(role: StaffRole) -> None:
    assert reviewer_role({"risk-analyst", role.value}) is StaffRole.RISK_ANALYST
    with pytest.raises(NotARiskAnalyst):
        reviewer_role({role.value})


def test_the_refusal_notice_gives_the_reason_and_the_ecoa_notice_and_claims_no_report() -> None:
    text = refusal_notice(NOW)
    assert FRAUD_REFUSAL_REASON in text and "2026-12-10" in text
    assert "Equal Credit Opportunity Act" in text
    assert "not based on information from a consumer reporting agency" in text
    assert "credit score" not in text.lower()
    with pytest.raises(ValueError):
        refusal_notice(datetime(2026, 12, 10))
