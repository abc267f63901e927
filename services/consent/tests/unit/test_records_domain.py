"""Consent records in memory: validity, the state machine, what a new consent must name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from expensura_consent.records.domain import (
    TRANSITIONS,
    VALID_FOR_PROCESSING,
    ConsentAction,
    ConsentChoice,
    ConsentRecord,
    ConsentStatus,
    InvalidConsent,
    NotActive,
    expire,
    record_choice,
    transition,
    valid_at,
    validate_new_consent,
    withdraw,
)
from expensura_events.catalog.consent import (
    ConsentExpired,
    ConsentGiven,
    ConsentRefused,
    ConsentWithdrawn,
)
from expensura_events.vocabulary import CollectionChannel, Purpose

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def record(
    status: ConsentStatus = ConsentStatus.GIVEN, expires: datetime | None = None
) -> ConsentRecord:
    return ConsentRecord(
        uuid.uuid4(),
        "s",
        Purpose.MARKETING,
        1,
        frozenset({"pd:Contact"}),
        frozenset(),
        status,
        expires,
        "1",
        CollectionChannel.PROVIDED_BY_USER,
        NOW - timedelta(days=1),
    )


@pytest.mark.obligation("RGT-4")
@pytest.mark.parametrize("status", list(ConsentStatus))
def test_only_the_given_family_is_valid(status: ConsentStatus) -> None:
    assert valid_at(record(status), NOW) is (status in VALID_FOR_PROCESSING)


@pytest.mark.obligation("RGT-4")
def test_a_consent_is_valid_until_its_expiry_and_not_at_it() -> None:
    assert valid_at(record(expires=NOW + timedelta(microseconds=1)), NOW)
    assert not valid_at(record(expires=NOW), NOW)
    assert not valid_at(record(expires=NOW - timedelta(days=1)), NOW)
    assert valid_at(record(expires=None), NOW)


def test_the_transitions_are_exactly_withdrawal_and_expiry_of_a_consent_in_force() -> None:
    expected = {
        (s, a): ConsentStatus.WITHDRAWN if a is ConsentAction.WITHDRAW else ConsentStatus.EXPIRED
        for s in VALID_FOR_PROCESSING
        for a in ConsentAction
    }
    assert dict(TRANSITIONS) == expected
    for status in ConsentStatus:
        for action in ConsentAction:
            if status in VALID_FOR_PROCESSING:
                assert transition(status, action) not in VALID_FOR_PROCESSING
            else:
                with pytest.raises(NotActive):
                    transition(status, action)


@pytest.mark.obligation("RGT-4")
def test_withdrawing_records_the_withdrawal_and_only_once() -> None:
    given = record(ConsentStatus.RENEWED_GIVEN)
    to, event = withdraw(given)
    assert to is ConsentStatus.WITHDRAWN
    assert event == ConsentWithdrawn(consent_id=given.consent_id, purpose=Purpose.MARKETING)
    for done in (ConsentStatus.WITHDRAWN, ConsentStatus.EXPIRED, ConsentStatus.REFUSED):
        with pytest.raises(NotActive, match=done.value):
            withdraw(record(done))


def test_expiry_ends_a_consent_in_force_and_nothing_else() -> None:
    given = record(expires=NOW)
    to, event = expire(given)
    assert to is ConsentStatus.EXPIRED
    assert event == ConsentExpired(consent_id=given.consent_id, purpose=Purpose.MARKETING)
    with pytest.raises(NotActive):
        expire(record(ConsentStatus.WITHDRAWN))


@pytest.mark.obligation("RUL-4")
def test_a_new_consent_names_categories_of_the_purpose_and_an_expiry_ahead() -> None:
    validate_new_consent(Purpose.MARKETING, {"pd:Contact"}, set(), NOW, NOW + timedelta(days=1))
    with pytest.raises(InvalidConsent, match="at least one"):
        validate_new_consent(Purpose.MARKETING, set(), set())
    with pytest.raises(InvalidConsent, match="may not use"):
        validate_new_consent(Purpose.MARKETING, {"pd:Contact", "pd:OfficialID"}, set())
    with pytest.raises(InvalidConsent, match="future"):
        validate_new_consent(Purpose.MARKETING, {"pd:Contact"}, set(), NOW, NOW)
    with pytest.raises(InvalidConsent, match="at most"):
        validate_new_consent(
            Purpose.CREDIT_ASSESSMENT, {"pd:CreditRecord"}, {f"p{i}" for i in range(21)}
        )


def test_a_choice_becomes_a_record_of_the_current_purpose_version_and_its_event() -> None:
    consent_id = uuid.uuid4()
    choice = ConsentChoice(
        purpose=Purpose.PERSONALISATION,
        categories=frozenset({"pd:LoanRecord", "pd:DeviceBased"}),
        recipients=frozenset(),
        policy_version="1",
        expires_at=NOW + timedelta(days=30),
    )
    given, event = record_choice(consent_id, "s", choice, NOW)
    assert given.status is ConsentStatus.GIVEN and given.purpose_version == 2
    assert given.given_at == NOW and valid_at(given, NOW)
    assert isinstance(event, ConsentGiven)
    assert event.categories == ["pd:DeviceBased", "pd:LoanRecord"]
    assert (event.consent_id, event.purpose_version, event.expires_at) == (
        consent_id,
        2,
        choice.expires_at,
    )
    refused, refusal = record_choice(
        consent_id, "s", ConsentChoice(**{**choice.__dict__, "given": False}), NOW
    )
    assert refused.status is ConsentStatus.REFUSED and not valid_at(refused, NOW)
    assert isinstance(refusal, ConsentRefused) and refusal.purpose_version == 2
