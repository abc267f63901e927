"""Sign-up that tells nobody whether an e-mail has an account, and the proof that the holder
receives mail there before loans serves them: through the public HTTP API, the SMTP sink
the stack mails to, and loans' answer."""

from __future__ import annotations

import uuid

import httpx
import pytest

from expensura_ops.testing import personal, tokens
from expensura_ops.testing.stack import LocalStack, eventually

PASSWORD = tokens.PASSWORD
APPLICATION = {
    "amount_cents": 120_000,
    "term_months": 12,
    "purpose": "home-improvement",
    "stated_monthly_income_cents": 480_000,
}


def _email() -> str:
    email = f"signup-{uuid.uuid4().hex[:10]}@example.com"
    personal.record("a user's e-mail", email)
    return email


def _sign_up(stack: LocalStack, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{stack.processes['identity'].url}/v1/accounts",
        json={"email": email, "password": password},
        timeout=15,
    )


def _sign_in(stack: LocalStack, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{stack.processes['identity'].url}/v1/sessions",
        json={"email": email, "password": password},
        timeout=15,
    )


def _auth(stack: LocalStack, email: str) -> dict[str, str]:
    resp = _sign_in(stack, email)
    assert resp.status_code == 200, resp.text
    return {"authorization": f"Bearer {resp.json()['access_token']}"}


def _prove(stack: LocalStack, auth: dict[str, str], code: str) -> httpx.Response:
    return httpx.post(
        f"{stack.processes['identity'].url}/v1/me/email-proof",
        headers=auth,
        json={"code": code},
        timeout=15,
    )


def _app_evidence() -> dict[str, str]:
    """What the app sends loans for its risk signals (USE-6): its device id and the card
    tokeniser's fingerprint, both of their own here so that no signal fires."""
    return {
        "expensura-device-id": str(uuid.uuid4()),
        "expensura-card-fingerprint": f"fp_{uuid.uuid4().hex}",
    }


def _apply(stack: LocalStack, auth: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{stack.processes['loans'].url}/v1/loan-applications",
        headers=auth | _app_evidence(),
        json=APPLICATION,
        timeout=15,
    )


def _head(stack: LocalStack) -> int:
    url = f"{stack.processes['identity'].internal_url}/internal/log"
    return int(httpx.get(url, params={"limit": 1}, auth=stack.operator).json()["head"])


def _log_types(stack: LocalStack, subject: str, after: int) -> list[str]:
    resp = httpx.get(
        f"{stack.processes['identity'].internal_url}/internal/log",
        params={"after": after, "limit": 5000},
        auth=stack.operator,
        timeout=15,
    )
    return [e["event_type"] for e in resp.json()["events"] if e.get("subject_id") == subject]


def test_signing_up_with_a_taken_e_mail_answers_as_a_new_one_and_mails_the_owner(
    stack: LocalStack,
) -> None:
    taken, fresh = _email(), _email()
    head = _head(stack)
    first = _sign_up(stack, taken)
    again = _sign_up(stack, taken.upper(), password="another password entirely")
    new = _sign_up(stack, fresh)
    for resp in (first, again, new):
        assert resp.status_code == 202, resp.text
    # byte for byte the same answer: nothing tells a taken address from a free one
    assert first.content == again.content == new.content
    assert first.headers["content-type"] == again.headers["content-type"]

    code = stack.code_for(taken)
    # the new account's code, then, for the second sign-up, a notice to the owner (no code)
    mails = stack.wait_for_mail(taken, 2)
    assert [m.subject for m in mails] == [
        "Your Expensura confirmation code",
        "Someone tried to open an Expensura account with your address",
    ]
    assert code in mails[0].body and not any(ch.isdigit() for ch in mails[1].body)
    assert len(stack.wait_for_mail(fresh, 1)) == 1  # the other address: its own code only

    # nothing was created or changed by the second sign-up: its password opens nothing
    assert _sign_in(stack, taken, "another password entirely").status_code == 401
    auth = _auth(stack, taken)
    owner = tokens.subject_of(auth["authorization"].removeprefix("Bearer "))
    assert _log_types(stack, owner, head) == [
        "identity.AccountOpened",
        "identity.EmailOwnershipProofRequested",
        "identity.SignUpWithTakenEmail",
        "identity.SignInRefused",  # the second sign-up's password
        "identity.SignedIn",
    ]


def test_a_malformed_sign_up_is_refused_as_before(stack: LocalStack) -> None:
    resp = _sign_up(stack, "not-an-address")
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"


@pytest.mark.obligation("USE-1")
async def test_a_new_account_proves_its_e_mail_then_loans_accepts_it(stack: LocalStack) -> None:
    email = _email()
    head = _head(stack)
    assert _sign_up(stack, email).status_code == 202
    auth = _auth(stack, email)
    tokens.verify_real_name(stack, auth)
    status = httpx.get(f"{stack.processes['identity'].url}/v1/me/email-proof", headers=auth)
    assert status.json() == {"email_proven": False, "proven_at": None}

    # verified, but the e-mail unproven: loans refuses (and keeps refusing once it knows the
    # verification: the refusal names the e-mail)
    async def refused_for_the_e_mail() -> bool:
        resp = _apply(stack, auth)
        assert resp.status_code == 403, resp.text
        return bool(resp.json()["title"] == "E-mail proof required")

    await eventually(refused_for_the_e_mail, what="loans to refuse for the unproven e-mail")

    code = stack.code_for(email)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = _prove(stack, auth, wrong)
    assert refused.status_code == 422 and refused.json()["detail"] == "wrong code."
    proven = _prove(stack, auth, code)
    assert proven.status_code == 200, proven.text
    assert proven.json()["email_proven"] is True
    reused = _prove(stack, auth, code)
    assert reused.status_code == 422 and "already used" in reused.json()["detail"]
    # a proven e-mail needs no new code
    again = httpx.post(f"{stack.processes['identity'].url}/v1/me/email-proof/code", headers=auth)
    assert again.status_code == 409

    async def accepted() -> bool:
        return _apply(stack, auth).status_code == 201

    await eventually(accepted, what="loans to learn the proof from identity's events")
    subject = tokens.subject_of(auth["authorization"].removeprefix("Bearer "))
    types = _log_types(stack, subject, head)
    assert types.count("identity.EmailOwnershipProofRefused") == 2  # the wrong and the reused
    assert types.count("identity.EmailOwnershipProven") == 1


def test_the_code_is_refused_to_anyone_but_its_account(stack: LocalStack) -> None:
    """Hostile callers: no token; another signed-in account holding the victim's code;
    guessing past the attempts (then even the right code is refused)."""
    victim, attacker = _email(), _email()
    for email in (victim, attacker):
        assert _sign_up(stack, email).status_code == 202
    code = stack.code_for(victim)
    idp = stack.processes["identity"].url
    assert httpx.post(f"{idp}/v1/me/email-proof", json={"code": code}).status_code == 401
    assert httpx.get(f"{idp}/v1/me/email-proof").status_code == 401
    assert httpx.post(f"{idp}/v1/me/email-proof/code").status_code == 401

    intruder = _auth(stack, attacker)
    assert _prove(stack, intruder, code).status_code == 422  # bound to the victim's account

    auth = _auth(stack, victim)
    for guess in range(5):
        resp = _prove(stack, auth, f"{(int(code) + 1 + guess) % 10**6:06d}")
        assert resp.status_code == 422
    spent = _prove(stack, auth, code)
    assert spent.status_code == 422 and "too many attempts" in spent.json()["detail"]
    # a new code waits a minute after the last (the mailbox may be someone else's)
    soon = httpx.post(f"{idp}/v1/me/email-proof/code", headers=auth)
    assert soon.status_code == 429 and int(soon.headers["retry-after"]) > 0
    status = httpx.get(f"{idp}/v1/me/email-proof", headers=auth).json()
    assert status["email_proven"] is False
