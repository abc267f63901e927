"""Tokens for tests that need a principal but are not about signing in.

User tokens come from the real sign-up and sign-in endpoints, partner tokens from the
gateway's registry and OAuth2 endpoints as a privacy officer and a partner use them. Staff
tokens are minted with identity's own session code and signing key (as a staff sign-in with
password and TOTP would), so that tests of other services need not walk the staff enrolment
flow; the staff sign-in itself is tested in identity's staff tests. Identity provides the
minting through its `expensura.testing` entry point `staff_token`: this harness imports no
service.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import jwt

from expensura_events.runtime import ServiceRuntime
from expensura_ops.services import service_definitions, testing_hook
from expensura_ops.testing import personal
from expensura_ops.testing.signing import PartnerAuth, PartnerRequestsAuth, decode_key
from expensura_ops.testing.stack import LocalStack, eventually

PASSWORD = "correct horse battery staple"


def user(
    stack: LocalStack,
    *,
    phone: str | None = None,
    prove_email: bool = True,
    email: str | None = None,
) -> tuple[str, dict[str, str]]:
    """Sign up and sign in a new app user; returns (subject id, Authorization header).
    `prove_email`: also present the code identity mailed to the SMTP sink, as the user
    does before loans serves them (False: an account whose e-mail is still unproven)."""
    idp = stack.processes["identity"].url
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    personal.record("a user's e-mail", email)
    personal.record("a user's phone", phone)
    resp = httpx.post(
        f"{idp}/v1/accounts", json={"email": email, "phone": phone, "password": PASSWORD}
    )
    resp.raise_for_status()
    tokens = httpx.post(f"{idp}/v1/sessions", json={"email": email, "password": PASSWORD})
    tokens.raise_for_status()
    access = tokens.json()["access_token"]
    auth = {"authorization": f"Bearer {access}"}
    if prove_email:
        prove(stack, email, auth)
    return subject_of(access), auth


# A chosen resident identity number and bank card pass identity's checks: GB 11643's
# ISO 7064 MOD 11-2 check character and the Luhn digit (identity's domain validates them;
# this harness imports no service, so it makes them itself).
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number() -> str:
    body = f"110101{random.randint(1950, 2005)}0101{random.randint(100, 999)}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]
    return body + check


def bank_card() -> str:
    base = f"622848{random.randrange(10**12):012d}"
    for digit in "0123456789":
        number = base + digit
        total = sum(
            (d if i % 2 == 0 else (2 * d if 2 * d < 10 else 2 * d - 9))
            for i, d in enumerate(int(c) for c in reversed(number))
        )
        if total % 10 == 0:
            return number
    raise AssertionError("a Luhn digit always exists")


def verify_real_name(stack: LocalStack, auth: dict[str, str]) -> None:
    """The user passes real-name verification through the sandbox agency (USE-1)."""
    resp = httpx.post(
        f"{stack.processes['identity'].url}/v1/me/verification",
        headers=auth,
        json={"id_number": id_number(), "bank_card": bank_card(), "mobile": "+8613800138001"},
        timeout=30,
    )
    assert resp.status_code == 202 and resp.json()["state"] == "verified", resp.text


# The identity events `sign_up` leaves about its subject: AccountOpened, the first code's
# EmailOwnershipProofRequested, and the sign-in's SignedIn.
SIGN_UP_EVENTS = 3


def sign_up(
    idp: str, email: str | None = None, *, phone: str | None = None, password: str = PASSWORD
) -> str:
    """Open an account and return its id. Sign-up answers 202 whether or not the e-mail
    was free and names no account; signing in (as the new holder does) tells its id."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    resp = httpx.post(
        f"{idp}/v1/accounts",
        json={"email": email, "phone": phone, "password": password},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    return signed_in_subject(idp, email, password)


def signed_in_subject(idp: str, email: str, password: str = PASSWORD) -> str:
    """Sign in and return the account's id (from the access token)."""
    signed_in = httpx.post(
        f"{idp}/v1/sessions", json={"email": email, "password": password}, timeout=30
    )
    assert signed_in.status_code == 200, signed_in.text
    return subject_of(signed_in.json()["access_token"])


def subject_of(access_token: str) -> str:
    """The account an access token was issued to (its `sub`): sign-up answers the same
    whether or not an account was opened, so it names none."""
    return str(jwt.decode(access_token, options={"verify_signature": False})["sub"])


def prove(stack: LocalStack, email: str, auth: dict[str, str], *, after: int = 0) -> None:
    """Present the code mailed to `email` (the newest once more than `after` messages)."""
    code = stack.code_for(email, after=after)
    resp = httpx.post(
        f"{stack.processes['identity'].url}/v1/me/email-proof", headers=auth, json={"code": code}
    )
    resp.raise_for_status()


class StaffTokenMinter(Protocol):
    async def __call__(
        self, rt: ServiceRuntime, subject: str, roles: Sequence[str], *, mfa: bool
    ) -> str: ...


async def staff(stack: LocalStack, *roles: str, mfa: bool = True) -> dict[str, str]:
    """An Authorization header for a staff member with these roles (and MFA passed)."""
    mint: StaffTokenMinter = testing_hook("staff_token")
    rt = ServiceRuntime(service_definitions()["identity"], stack.settings("identity"))
    try:
        token = await mint(rt, f"staff-{uuid.uuid4().hex[:8]}", roles, mfa=mfa)
    finally:
        await rt.close()
    return {"authorization": f"Bearer {token}"}


async def approve(stack: LocalStack, service: str, path: str) -> dict[str, Any]:
    """A second privacy officer approves a pending request at `path` (four eyes)."""
    second = await staff(stack, "privacy-officer")
    async with httpx.AsyncClient(timeout=15) as client:
        resp = await client.post(
            f"{stack.processes[service].url}{path}/approval",
            headers=second,
            json={"decision": "approve", "reason": "checked by a second officer"},
        )
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


async def legal_ground(
    stack: LocalStack, ground: dict[str, Any], officer: dict[str, str] | None = None
) -> dict[str, Any]:
    """Invoke a legal ground as a privacy officer and, when it is pending (it names
    recipients), have a second officer approve it; returns the ground in effect."""
    officer = officer or await staff(stack, "privacy-officer")
    personal.record("a ground's evidence", ground.get("evidence_reference"))
    personal.record("a ground's reason", ground.get("reason"))
    async with httpx.AsyncClient(timeout=15) as client:
        resp = await client.post(
            f"{stack.processes['consent'].url}/v1/legal-grounds", headers=officer, json=ground
        )
    resp.raise_for_status()
    invoked: dict[str, Any] = resp.json()
    if invoked["state"] != "pending":
        return invoked
    return await approve(stack, "consent", f"/v1/legal-grounds/{invoked['invocation_id']}")


@dataclass(frozen=True)
class PartnerToken:
    """A registered partner's gateway token and request key; each data request is signed
    (pass `auth=` to httpx, `requests_auth` to requests)."""

    partner_id: str
    kind: str
    token: str
    request_key: str

    @property
    def auth(self) -> PartnerAuth:
        return PartnerAuth(self.token, decode_key(self.request_key))

    @property
    def requests_auth(self) -> PartnerRequestsAuth:
        return PartnerRequestsAuth(self.token, decode_key(self.request_key))


async def known_to_consent(stack: LocalStack, partner_id: str) -> None:
    """Wait until consent has learned the partner from the gateway's log (a recipient a
    consent may name)."""
    consent = stack.processes["consent"].url

    async def listed() -> bool:
        async with httpx.AsyncClient(timeout=10) as client:
            found = (await client.get(f"{consent}/v1/recipients")).json()
        return any(r["recipient"] == partner_id for r in found)

    await eventually(listed, what=f"consent to learn partner {partner_id}")


async def recipient(
    stack: LocalStack, kind: str = "credit-bureau", partner_id: str | None = None
) -> str:
    """Register a partner (no agreement, no credential), approved by a second officer, and
    wait until consent knows it."""
    officer = await staff(stack, "privacy-officer")
    partner_id = partner_id or f"{kind}-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=15) as client:
        (
            await client.post(
                f"{stack.processes['sharing-gateway'].url}/v1/partners",
                headers=officer,
                json={"partner_id": partner_id, "name": f"Test {kind}", "kind": kind},
            )
        ).raise_for_status()
    await approve(stack, "sharing-gateway", f"/v1/partners/{partner_id}")
    await known_to_consent(stack, partner_id)
    return partner_id


async def partner(
    stack: LocalStack,
    kind: str = "court-or-arbitration-body",
    purposes: Sequence[str] = ("dispute-resolution", "legal-compliance"),
    fields: Sequence[str] = ("email", "phone"),
    *,
    inbound: bool = False,
    scopes: Sequence[str] | None = None,
) -> PartnerToken:
    """Register a partner with a year's agreement and a credential, as a privacy officer
    does and a second one approves each (four eyes); return its gateway token (valid five
    minutes) once consent knows the partner."""
    gateway = stack.processes["sharing-gateway"].url
    officer = await staff(stack, "privacy-officer")
    partner_id = f"{kind}-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=gateway, headers=officer, timeout=15) as client:
        (
            await client.post(
                "/v1/partners",
                json={"partner_id": partner_id, "name": f"Test {kind}", "kind": kind},
            )
        ).raise_for_status()
        await approve(stack, "sharing-gateway", f"/v1/partners/{partner_id}")
        agreement = await client.post(
            f"/v1/partners/{partner_id}/agreements",
            json={
                "reference": f"NDA-{partner_id}",
                "purposes": list(purposes),
                "fields": list(fields),
                "inbound": inbound,
                "starts_at": (now - timedelta(days=1)).isoformat(),
                "ends_at": (now + timedelta(days=365)).isoformat(),
            },
        )
        agreement.raise_for_status()
        agreement_id = agreement.json()["agreement_id"]
        await approve(
            stack, "sharing-gateway", f"/v1/partners/{partner_id}/agreements/{agreement_id}"
        )
        credential = await client.post(
            f"/v1/partners/{partner_id}/credentials",
            json={"scopes": list(scopes or purposes)},
        )
        credential.raise_for_status()
        client_id = credential.json()["client_id"]
        await approve(
            stack, "sharing-gateway", f"/v1/partners/{partner_id}/credentials/{client_id}"
        )
        issued = await client.post(
            "/oauth/token",
            headers={"authorization": ""},
            data={
                "grant_type": "client_credentials",
                "client_id": credential.json()["client_id"],
                "client_secret": credential.json()["client_secret"],
            },
        )
        issued.raise_for_status()
    if "consent" in stack.processes:
        await known_to_consent(stack, partner_id)
    answer = issued.json()
    return PartnerToken(partner_id, kind, answer["access_token"], answer["request_key"])
