"""What identity offers the test harness (`expensura_ops.testing.tokens`), through the
`expensura.testing` entry point: staff tokens minted with identity's own session code and
signing key, as a staff sign-in with password and TOTP would issue them."""

from __future__ import annotations

from collections.abc import Sequence

from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_identity.auth import service as auth
from expensura_identity.auth.domain import PrincipalKind


async def staff_token(rt: ServiceRuntime, subject: str, roles: Sequence[str], *, mfa: bool) -> str:
    """An access token for staff member `subject` with `roles` (and MFA passed if `mfa`)."""
    key = await auth.signing_key(rt)
    async with rt.engine.begin() as conn:
        pair = await auth.issue(
            conn,
            key,
            kind=PrincipalKind.STAFF.value,
            subject=subject,
            roles=list(roles),
            amr=["pwd", "otp"] if mfa else ["pwd"],
            access_ttl=600,
            refresh_ttl=3600,
            family_expires_at=auth.session_end(rt, PrincipalKind.STAFF, utcnow()),
        )
    return pair.access_token
