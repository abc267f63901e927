"""Real-name verification rules in memory: the checksums, the request's states, and what
the agency's answer means."""

from __future__ import annotations

import json
import uuid

import pytest

from expensura_events.catalog.identity_verification import (
    RealNameVerificationFailed,
    RealNameVerified,
)
from expensura_identity.verification.domain import (
    BLOCKS_NEW_REQUEST,
    TRANSITIONS,
    IllegalTransition,
    InvalidIdentityData,
    VerificationAction,
    VerificationState,
    agency_answer,
    check,
    retry_delay,
    transition,
    valid_bank_card,
    valid_id_number,
    verification_stream,
    verified_claims,
)

# The GB 11643-1999 example number, and a test card number of each common length.
ID_NUMBER = "11010519491231002X"
CARD = "6228480402564890018"


@pytest.mark.obligation("COL-2")
@pytest.mark.parametrize("value", [ID_NUMBER, "110101199003074477", "440524188001010014"])
def test_identity_numbers_with_their_mod_11_2_check_digit_pass(value: str) -> None:
    assert valid_id_number(value)


@pytest.mark.obligation("COL-2")
@pytest.mark.parametrize(
    "value",
    [
        "110105194912310021",  # wrong check digit
        "11010519491231002x",  # the X must be upper case
        "11010519491231002",  # 17 characters
        "1101051949123100299",  # 19 characters
        "A1010519491231002X",  # not a digit
        "",
    ],
)
def test_identity_numbers_failing_the_check_digit_or_the_form_are_refused(value: str) -> None:
    assert not valid_id_number(value)


@pytest.mark.obligation("COL-2")
def test_every_wrong_check_digit_is_caught() -> None:
    wrong = [ID_NUMBER[:17] + d for d in "0123456789X" if d != ID_NUMBER[17]]
    assert len(wrong) == 10 and not any(valid_id_number(v) for v in wrong)


@pytest.mark.obligation("COL-2")
@pytest.mark.parametrize("value", [CARD, "4111111111111111", "378282246310005", "123456789007"])
def test_bank_cards_passing_luhn_with_12_to_19_digits_pass(value: str) -> None:
    assert valid_bank_card(value)


@pytest.mark.obligation("COL-2")
@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",  # Luhn fails
        "4111 1111 1111 1111",  # spaces
        "12345678903",  # 11 digits (passes Luhn)
        "11111111111111111111",  # 20 digits
        "",
    ],
)
def test_bank_cards_failing_luhn_or_the_length_are_refused(value: str) -> None:
    assert not valid_bank_card(value)


@pytest.mark.obligation("COL-2")
def test_every_single_digit_error_in_a_card_is_caught() -> None:
    for i in range(len(CARD)):
        for d in "0123456789":
            if d != CARD[i]:
                assert not valid_bank_card(CARD[:i] + d + CARD[i + 1 :])


@pytest.mark.obligation("COL-2", "USE-1")
def test_check_names_the_first_malformed_field() -> None:
    check(ID_NUMBER, CARD, "+8613800138000")
    for args, field in [
        (("110105194912310021", CARD, "+8613800138000"), "id_number"),
        ((ID_NUMBER, "4111111111111112", "+8613800138000"), "bank_card"),
        ((ID_NUMBER, CARD, "13800138000"), "mobile"),
    ]:
        with pytest.raises(InvalidIdentityData, match=field):
            check(*args)


@pytest.mark.obligation("USE-1")
@pytest.mark.parametrize("state", list(VerificationState))
@pytest.mark.parametrize("action", list(VerificationAction))
def test_a_request_moves_only_as_its_table_says(
    state: VerificationState, action: VerificationAction
) -> None:
    legal = {
        (VerificationState.PENDING, VerificationAction.AGENCY_VERIFIED): VerificationState.VERIFIED,
        (VerificationState.PENDING, VerificationAction.AGENCY_REFUSED): VerificationState.MISMATCH,
        (
            VerificationState.PENDING,
            VerificationAction.AGENCY_UNAVAILABLE,
        ): VerificationState.PENDING,
    }
    assert legal == TRANSITIONS
    if (state, action) in legal:
        assert transition(state, action) is legal[(state, action)]
    else:
        with pytest.raises(IllegalTransition):
            transition(state, action)


@pytest.mark.obligation("USE-1")
def test_a_pending_or_verified_request_blocks_another_a_mismatch_does_not() -> None:
    assert {VerificationState.PENDING, VerificationState.VERIFIED} == BLOCKS_NEW_REQUEST


def test_retries_back_off_exponentially_up_to_a_minute() -> None:
    assert [retry_delay(n, base=1.0) for n in range(0, 9)] == [
        1.0,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        60.0,
        60.0,
    ]
    assert retry_delay(3, base=0.5) == 2.0


VERIFIED = {
    "outcome": "verified",
    "trust_framework": "cn_rnv",
    "verified_at": "2026-11-26T12:00:00+00:00",
    "verifier": "Sandbox Agency",
    "transaction_id": "txn-1",
    "evidence": [{"type": "document"}, {"type": "electronic_record"}],
}


@pytest.mark.obligation("USE-1")
def test_a_verified_answer_is_recorded_as_verified_claims() -> None:
    request = uuid.uuid4()
    action, event = agency_answer(request, "verified", VERIFIED)
    assert action is VerificationAction.AGENCY_VERIFIED
    assert isinstance(event, RealNameVerified) and event.request_id == request
    assert json.loads(event.evidence) == VERIFIED["evidence"]
    claims = verified_claims(event)["verification"]
    assert claims == {
        "trust_framework": "cn_rnv",
        "time": "2026-11-26T12:00:00+00:00",
        "verifier": "Sandbox Agency",
        "txn": "txn-1",
        "evidence": VERIFIED["evidence"],
    }


@pytest.mark.obligation("USE-1")
@pytest.mark.parametrize("outcome", ["mismatch", "rejected"])
def test_any_other_answer_is_a_recorded_failure(outcome: str) -> None:
    action, event = agency_answer(uuid.uuid4(), outcome, {"status": 400})
    assert action is VerificationAction.AGENCY_REFUSED
    assert isinstance(event, RealNameVerificationFailed) and event.reason == f"agency: {outcome}"


def test_a_request_has_a_stream_of_its_own() -> None:
    request = uuid.uuid4()
    assert verification_stream(request) == f"verification-{request}"
