"""Tokens for tests that need a principal but are not about signing in.

User tokens come from the real sign-up and sign-in endpoints. Staff tokens are minted with
identity's own session code and signing key (as a staff sign-in with password and TOTP
would), so that tests of other services need not walk the staff enrolment flow; the staff
sign-in itself is tested in identity's staff tests.
"""

from __future__ import annotations

import uuid

import httpx

from expensura_events.cipher import MasterKey
from expensura_events.runtime import ServiceRuntime
from expensura_ops.services import service_definitions
from expensura_ops.testing.stack import LocalStack

PASSWORD = "correct horse battery staple"


def user(stack: LocalStack, *, phone: str | None = None) -> tuple[str, dict[str, str]]:
    """Sign up and sign in a new app user; returns (subject id, Authorization header)."""
    idp = stack.processes["identity"].url
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    resp = httpx.post(
        f"{idp}/v1/accounts", json={"email": email, "phone": phone, "password": PASSWORD}
    )
    resp.raise_for_status()
    tokens = httpx.post(f"{idp}/v1/sessions", json={"email": email, "password": PASSWORD})
    tokens.raise_for_status()
    return resp.json()["account_id"], {"authorization": f"Bearer {tokens.json()['access_token']}"}


async def staff(stack: LocalStack, *roles: str, mfa: bool = True) -> dict[str, str]:
    """An Authorization header for a staff member with these roles (and MFA passed)."""
    from expensura_identity.auth import sessions
    from expensura_identity.auth.keys import active_key

    rt = ServiceRuntime(service_definitions()["identity"], stack.settings("identity"))
    try:
        key = await active_key(rt.engine, MasterKey.from_base64(rt.settings.master_key))
        async with rt.engine.begin() as conn:
            pair = await sessions.issue(
                conn,
                key,
                kind="staff",
                subject=f"staff-{uuid.uuid4().hex[:8]}",
                roles=list(roles),
                amr=["pwd", "otp"] if mfa else ["pwd"],
                access_ttl=600,
                refresh_ttl=3600,
            )
    finally:
        await rt.close()
    return {"authorization": f"Bearer {pair.access_token}"}
