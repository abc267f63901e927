"""E-mail proof rules in memory: a code works once, within its lifetime, for a few attempts,
for its own account; a new code only after a pause; what the sign-up answers and mails."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from expensura_events.catalog.identity import (
    EmailOwnershipProofRefused,
    EmailOwnershipProofRequested,
    EmailOwnershipProven,
)
from expensura_identity.accounts.views import SignUpAccepted
from expensura_identity.email_proof.domain import (
    CODE_TTL,
    MAX_ATTEMPTS,
    RESEND_AFTER,
    AlreadyProven,
    CodeRefused,
    IssuedCode,
    TooSoon,
    after_attempt,
    attempts_left,
    check,
    code_hash,
    issue,
    new_code,
)
from expensura_identity.email_proof.service import code_mail, taken_mail
from expensura_identity.email_proof.views import ProofRequest

SECRET = b"look-up secret for unit tests!!!!"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ACCOUNT = uuid.UUID("00000000-0000-4000-8000-000000000001")


def issued(code: str = "123456", at: datetime = NOW) -> IssuedCode:
    code_, event = issue(ACCOUNT, code_hash(SECRET, ACCOUNT, code), at, last=None, proven=False)
    assert isinstance(event, EmailOwnershipProofRequested) and event.expires_at == at + CODE_TTL
    return code_


def test_codes_are_six_digits_and_vary() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150  # a CSPRNG, not a constant or a counter


def test_the_live_code_proves_the_e_mail() -> None:
    proof = check(issued(), code_hash(SECRET, ACCOUNT, "123456"), NOW + timedelta(minutes=1))
    assert isinstance(proof, EmailOwnershipProven) and proof.method == "one-time-code"


def test_a_wrong_code_is_refused_and_counts_as_an_attempt() -> None:
    code = issued()
    with pytest.raises(CodeRefused) as refused:
        check(code, code_hash(SECRET, ACCOUNT, "654321"), NOW)
    assert refused.value.reason == "wrong code"
    assert isinstance(refused.value.event(), EmailOwnershipProofRefused)
    assert attempts_left(after_attempt(code, NOW, proven=False)) == MAX_ATTEMPTS - 1


def test_a_code_expires() -> None:
    presented = code_hash(SECRET, ACCOUNT, "123456")
    check(issued(), presented, NOW + CODE_TTL - timedelta(seconds=1))
    with pytest.raises(CodeRefused, match="expired"):
        check(issued(), presented, NOW + CODE_TTL)


def test_a_code_works_once() -> None:
    presented = code_hash(SECRET, ACCOUNT, "123456")
    code = issued()
    check(code, presented, NOW)
    used = after_attempt(code, NOW, proven=True)
    assert used.used_at == NOW
    with pytest.raises(CodeRefused, match="already used"):
        check(used, presented, NOW)


def test_after_the_attempts_are_spent_even_the_right_code_is_refused() -> None:
    code = issued()
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(CodeRefused, match="wrong"):
            check(code, code_hash(SECRET, ACCOUNT, "000000"), NOW)
        code = after_attempt(code, NOW, proven=False)
    assert attempts_left(code) == 0
    with pytest.raises(CodeRefused, match="too many attempts"):
        check(code, code_hash(SECRET, ACCOUNT, "123456"), NOW)


def test_no_code_issued_proves_nothing() -> None:
    with pytest.raises(CodeRefused, match="no code"):
        check(None, code_hash(SECRET, ACCOUNT, "123456"), NOW)


def test_a_code_is_bound_to_its_account_and_to_the_secret() -> None:
    other = uuid.uuid4()
    right = code_hash(SECRET, ACCOUNT, "123456")
    assert code_hash(SECRET, other, "123456") != right
    assert code_hash(b"another secret", ACCOUNT, "123456") != right
    with pytest.raises(CodeRefused, match="wrong"):
        check(issued(), code_hash(SECRET, other, "123456"), NOW)


def test_a_new_code_replaces_the_last_but_not_within_the_pause() -> None:
    last = issued()
    hashed = code_hash(SECRET, ACCOUNT, "222222")
    with pytest.raises(TooSoon) as wait:
        issue(ACCOUNT, hashed, NOW + timedelta(seconds=10), last=last, proven=False)
    assert 0 < wait.value.retry_after <= RESEND_AFTER.total_seconds()
    new, _ = issue(ACCOUNT, hashed, NOW + RESEND_AFTER, last=last, proven=False)
    assert (new.attempts, new.used_at, new.code_hash) == (0, None, hashed)
    with pytest.raises(CodeRefused, match="wrong"):  # the last code no longer works
        check(new, code_hash(SECRET, ACCOUNT, "123456"), NOW + RESEND_AFTER)


def test_a_proven_e_mail_gets_no_new_code() -> None:
    with pytest.raises(AlreadyProven):
        issue(ACCOUNT, b"x", NOW, last=None, proven=True)


@pytest.mark.parametrize(
    "code",
    [
        "12345",
        "1234567",
        "12345a",
        " 123456",
        "",
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "12345\u0666",
    ],
)
def test_the_edge_takes_only_six_ascii_digits(code: str) -> None:
    with pytest.raises(ValueError):
        ProofRequest.model_validate({"code": code})


def test_the_sign_up_answer_is_one_constant_body() -> None:
    """Nothing in it depends on the request: the same bytes for a new and a taken e-mail."""
    assert SignUpAccepted().model_dump() == SignUpAccepted().model_dump()
    assert set(SignUpAccepted.model_fields) == {"status", "detail"}


def test_the_mails_carry_the_code_or_the_notice_and_no_other_secret() -> None:
    mail = code_mail("ann@example.com", "042917")
    assert mail.to == "ann@example.com" and "042917" in mail.body
    notice = taken_mail("ann@example.com")
    assert notice.to == "ann@example.com" and "nothing was created" in notice.body
    assert not any(ch.isdigit() for ch in notice.body)  # a notice carries no code
