"""Staff: password plus TOTP before any personal data, lock-out, recovery, look-ups that
check the customer first, and the customer's view of who read their data."""

from __future__ import annotations

import time
import uuid

import httpx
import pyotp
import pytest

from expensura_ops.testing import personal, tokens
from expensura_ops.testing.stack import LocalStack

PASSWORD = "a long staff password 2026"


def _enrolled(idp: httpx.Client, email: str) -> tuple[str, list[str]]:
    """Sign in with the password, enrol TOTP; returns (secret, recovery codes)."""
    first = idp.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD}).json()
    enrol = {"authorization": f"Bearer {first['enrolment_token']}"}
    secret = idp.post("/v1/staff/me/totp", headers=enrol).json()["secret"]
    # Enrol with the previous step's code (still accepted): a code works once, so the
    # sign-in that follows can use the current one.
    previous = pyotp.TOTP(secret).at(time.time() - 30)
    codes = idp.post("/v1/staff/me/totp/confirm", headers=enrol, json={"code": previous}).json()[
        "recovery_codes"
    ]
    return secret, codes


def _with_mfa(idp: httpx.Client, email: str, **answer: str) -> httpx.Response:
    challenge = idp.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD}).json()[
        "challenge"
    ]
    return idp.post("/v1/staff/sessions/mfa", json={"challenge": challenge, **answer})


@pytest.fixture
def idp(stack: LocalStack) -> httpx.Client:
    return httpx.Client(base_url=stack.processes["identity"].url, timeout=10)


def _admin(stack: LocalStack, idp: httpx.Client) -> dict[str, str]:
    email = f"admin-{uuid.uuid4().hex[:6]}@expensura.example"
    personal.record("a staff member's e-mail", email)
    out = stack.cli("staff", "create-admin", "--email", email, "--password", PASSWORD)
    assert "created administrator" in out.stdout
    secret, _ = _enrolled(idp, email)
    token = _with_mfa(idp, email, code=pyotp.TOTP(secret).now()).json()["access_token"]
    return {"authorization": f"Bearer {token}"}


def _staff(idp: httpx.Client, admin: dict[str, str], role: str) -> tuple[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:6]}@expensura.example"
    personal.record("a staff member's e-mail", email)
    resp = idp.post(
        "/v1/staff", headers=admin, json={"email": email, "password": PASSWORD, "roles": [role]}
    )
    assert resp.status_code == 201, resp.text
    return email, resp.json()["staff_id"]


@pytest.mark.obligation("SEC-2", "USE-4", "SEC-3")
def test_customer_service_needs_mfa_and_the_customers_details_and_the_read_is_visible(
    stack: LocalStack, idp: httpx.Client
) -> None:
    customer, customer_auth = tokens.user(stack, phone="+14155550177")
    email = next(
        e["payload"]["email"]
        for e in idp.post("/v1/me/exports", headers=customer_auth, timeout=30).json()["services"][
            "identity"
        ]["events"]
        if e["event_type"] == "identity.AccountOpened"
    )
    admin = _admin(stack, idp)
    agent_email, _ = _staff(idp, admin, "customer-service")
    personal.record("a staff look-up's case reference", "CASE-2026-881")
    lookup = {
        "account_id": customer,
        "case_reference": "CASE-2026-881",
        "purpose": "customer-care",
        "verification": {"email": email, "phone_last4": "0177"},
    }
    # password alone: only an enrolment token, which reaches no personal data
    first = idp.post("/v1/staff/sessions", json={"email": agent_email, "password": PASSWORD})
    enrol_only = {"authorization": f"Bearer {first.json()['enrolment_token']}"}
    assert idp.post("/v1/staff/lookups", headers=enrol_only, json=lookup).status_code == 403
    secret, _ = _enrolled(idp, agent_email)
    agent = {
        "authorization": "Bearer "
        + _with_mfa(idp, agent_email, code=pyotp.TOTP(secret).now()).json()["access_token"]
    }
    wrong = idp.post(
        "/v1/staff/lookups",
        headers=agent,
        json=lookup | {"verification": {"email": email, "phone_last4": "9999"}},
    )
    assert wrong.status_code == 403 and "phone" not in wrong.text
    other_purpose = idp.post(
        "/v1/staff/lookups", headers=agent, json=lookup | {"purpose": "marketing"}
    )
    assert other_purpose.status_code == 403
    assert (
        idp.post(
            "/v1/staff/lookups", headers=agent, json=lookup | {"purpose": "gossip"}
        ).status_code
        == 422
    )
    found = idp.post("/v1/staff/lookups", headers=agent, json=lookup)
    assert found.status_code == 200, found.text
    assert found.json()["phone"] == "+14155550177"
    log = idp.get("/v1/me/access-log", headers=customer_auth).json()
    staff_reads = [e for e in log if e["kind"] == "staff"]
    assert len(staff_reads) == 1
    read = staff_reads[0]
    assert read["role"] == "customer-service" and read["purpose"] == "customer-care"
    assert read["case_reference"] == "CASE-2026-881" and read["who"].startswith("staff-")
    assert "staff-" in read["who"] and agent_email not in str(log)


@pytest.mark.obligation("SEC-2")
def test_wrong_codes_lock_the_account_and_an_administrator_unlocks_it(
    stack: LocalStack, idp: httpx.Client
) -> None:
    admin = _admin(stack, idp)
    email, staff_id = _staff(idp, admin, "risk-analyst")
    secret, _ = _enrolled(idp, email)
    for _ in range(5):
        assert _with_mfa(idp, email, code="000000").status_code == 401
    locked = idp.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD})
    assert locked.status_code == 423
    assert idp.post(f"/v1/staff/{staff_id}/unlock").status_code == 401
    assert idp.post(f"/v1/staff/{staff_id}/unlock", headers=admin).status_code == 200
    assert _with_mfa(idp, email, code=pyotp.TOTP(secret).now()).status_code == 200


@pytest.mark.obligation("SEC-2")
def test_a_recovery_code_works_once(stack: LocalStack, idp: httpx.Client) -> None:
    admin = _admin(stack, idp)
    email, _ = _staff(idp, admin, "security-officer")
    _, codes = _enrolled(idp, email)
    assert _with_mfa(idp, email, recovery_code=codes[0]).status_code == 200
    assert _with_mfa(idp, email, recovery_code=codes[0]).status_code == 401
    assert _with_mfa(idp, email, recovery_code=codes[1]).status_code == 200


@pytest.mark.obligation("SEC-2")
def test_unknown_and_locked_staff_look_like_a_wrong_password_until_it_is_proven(
    stack: LocalStack, idp: httpx.Client
) -> None:
    admin = _admin(stack, idp)
    email, _ = _staff(idp, admin, "risk-analyst")
    _enrolled(idp, email)
    other, _ = _staff(idp, admin, "risk-analyst")

    def sign_in(who: str, password: str) -> httpx.Response:
        return idp.post("/v1/staff/sessions", json={"email": who, "password": password})

    unknown = sign_in(f"nobody-{uuid.uuid4().hex[:6]}@expensura.example", "a wrong password")
    wrong = sign_in(other, "a wrong password")
    for _ in range(5):
        assert _with_mfa(idp, email, code="000000").status_code == 401
    locked_wrong = sign_in(email, "a wrong password")
    assert unknown.status_code == wrong.status_code == locked_wrong.status_code == 401
    assert unknown.json() == wrong.json() == locked_wrong.json()
    assert sign_in(email, PASSWORD).status_code == 423  # only the right password learns it


@pytest.mark.obligation("SEC-2")
def test_administrators_disable_and_re_enable_staff_and_a_disabled_session_is_gone(
    stack: LocalStack, idp: httpx.Client
) -> None:
    admin = _admin(stack, idp)
    email, staff_id = _staff(idp, admin, "privacy-officer")
    secret, _ = _enrolled(idp, email)
    tokens = _with_mfa(idp, email, code=pyotp.TOTP(secret).now()).json()
    own = {"authorization": f"Bearer {tokens['access_token']}"}
    # a staff member who is not an administrator cannot disable anyone
    assert idp.post(f"/v1/staff/{staff_id}/disable", headers=own).status_code == 403
    assert idp.post(f"/v1/staff/{staff_id}/disable", headers=admin).status_code == 200
    assert idp.post(f"/v1/staff/{staff_id}/disable", headers=admin).status_code == 409
    refreshed = idp.post("/v1/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    signed_in = idp.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD})
    assert signed_in.status_code == 423
    assert idp.post(f"/v1/staff/{staff_id}/enable", headers=admin).status_code == 200
    assert (
        idp.put(
            f"/v1/staff/{staff_id}/roles", headers=admin, json={"roles": ["customer-service"]}
        ).status_code
        == 200
    )
    assert idp.post(f"/v1/staff/{staff_id}/totp/reset", headers=admin).status_code == 200
    again = idp.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD}).json()
    assert again["enrolment_token"] and again["challenge"] is None  # enrols again
    assert idp.delete(f"/v1/staff/{staff_id}/sessions", headers=admin).status_code == 200


@pytest.mark.obligation("SEC-2")
def test_a_challenge_presented_by_another_user_agent_is_refused(
    stack: LocalStack, idp: httpx.Client
) -> None:
    admin = _admin(stack, idp)
    email, _ = _staff(idp, admin, "risk-analyst")
    secret, _ = _enrolled(idp, email)
    challenge = idp.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD}).json()[
        "challenge"
    ]
    answer = {"challenge": challenge, "code": pyotp.TOTP(secret).now()}
    relayed = idp.post("/v1/staff/sessions/mfa", json=answer, headers={"user-agent": "relay/1"})
    assert relayed.status_code == 401
    assert idp.post("/v1/staff/sessions/mfa", json=answer).status_code == 200
    assert idp.post("/v1/staff/sessions/mfa", json=answer).status_code == 401  # replayed
