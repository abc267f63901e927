"""Tokens for tests that need a principal but are not about signing in.

User tokens come from the real sign-up and sign-in endpoints. Staff tokens are minted with
identity's own session code and signing key (as a staff sign-in with password and TOTP
would), so that tests of other services need not walk the staff enrolment flow; the staff
sign-in itself is tested in identity's staff tests. Identity provides the minting through
its `expensura.testing` entry point `staff_token`: this harness imports no service.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

import httpx

from expensura_events.runtime import ServiceRuntime
from expensura_ops.services import service_definitions, testing_hook
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
