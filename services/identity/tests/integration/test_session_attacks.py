"""Issue 11 with the attack as the test: a leaked staff refresh token presented after the
session's cap, after a lock-out and after the account was disabled; a reused TOTP code; a
replayed or relayed MFA challenge. Each is refused and logged."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import jwt
import pyotp
import pytest
from sqlalchemy import select

from expensura_events.catalog.identity import SessionRefreshRefused
from expensura_events.catalog.identity_staff import (
    StaffDisabled,
    StaffRolesChanged,
    StaffSecondFactorRefused,
    StaffSessionsRevoked,
)
from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import StaffRole
from expensura_identity.auth import service as auth
from expensura_identity.auth.domain import (
    ChallengeInvalid,
    RefreshRefused,
    TokenPair,
    WrongCredentials,
    sessions_stream,
)
from expensura_identity.staff import service as staff
from expensura_identity.staff.domain import AccountDisabled, staff_stream
from expensura_identity.tables import refresh_tokens, staff_members

PASSWORD = "a long staff password 2026"
CLIENT, AGENT = "198.51.100.23", "StaffConsole/1.0"
ADMIN = "staff-admin0000001"


async def _enrolled(rt: ServiceRuntime) -> tuple[str, str, str]:
    email = f"officer-{uuid.uuid4().hex[:8]}@expensura.example"
    staff_id = await staff.create_staff(
        rt, email, PASSWORD, [StaffRole.PRIVACY_OFFICER], Actor.system("tests")
    )
    setup = await staff.start_totp(rt, staff_id)
    # enrol with the previous step's code, so that the sign-ins below have a fresh step
    totp = pyotp.TOTP(setup.secret)
    await staff.confirm_totp(rt, staff_id, totp.at(datetime.now() - timedelta(seconds=30)))
    return email, staff_id, setup.secret


async def _signed_in(rt: ServiceRuntime, email: str, secret: str) -> TokenPair:
    step = await staff.sign_in(rt, email, PASSWORD, CLIENT, AGENT)
    assert step.challenge is not None
    code = pyotp.TOTP(secret).now()
    return await staff.second_factor(rt, step.challenge, code, None, CLIENT, AGENT)


async def _events(rt: ServiceRuntime, stream: str) -> list[object]:
    async with rt.engine.connect() as conn:
        return [e.payload for e in await rt.store.read_stream(conn, stream)]


def _refusals(events: list[object]) -> list[str]:
    return [e.reason for e in events if isinstance(e, SessionRefreshRefused)]


def _later(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """The attacker comes back `by` later (the clock of identity's session code moves)."""
    now: Callable[[], datetime] = utcnow
    monkeypatch.setattr(auth, "utcnow", lambda: now() + by)


@pytest.mark.obligation("SEC-2")
async def test_a_leaked_staff_refresh_token_dies_with_its_working_day(
    rt: ServiceRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    email, staff_id, secret = await _enrolled(rt)
    pair = await _signed_in(rt, email, secret)
    rotated = await auth.refresh(rt, pair.refresh_token)
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(refresh_tokens).where(refresh_tokens.c.family_id == pair.session_id)
            )
        ).all()
    cap = rt.settings.staff_session_max_seconds  # type: ignore[attr-defined]
    assert cap == 10 * 3600
    # the first refresh keeps the family's end: a staff working day, not the users' month
    assert len(rows) == 2 and len({r.family_expires_at for r in rows}) == 1
    end = rows[0].family_expires_at
    assert end - rows[0].family_started_at == timedelta(seconds=cap)
    assert all(r.expires_at <= end for r in rows)
    # nine hours later the session still rotates; eleven hours later it is over
    _later(monkeypatch, timedelta(hours=9))
    rotated = await auth.refresh(rt, rotated.refresh_token)
    _later(monkeypatch, timedelta(hours=11))
    with pytest.raises(RefreshRefused, match="maximum lifetime"):
        await auth.refresh(rt, rotated.refresh_token)
    assert _refusals(await _events(rt, sessions_stream(staff_id))) == ["session-cap"]


@pytest.mark.obligation("SEC-2")
async def test_a_leaked_staff_refresh_token_dies_at_the_lock_out(rt: ServiceRuntime) -> None:
    email, staff_id, secret = await _enrolled(rt)
    pair = await _signed_in(rt, email, secret)
    for _ in range(5):  # someone guesses the password: the account locks
        with pytest.raises(WrongCredentials):
            await staff.sign_in(rt, email, "not the password!", f"203.0.113.{_}", AGENT)
    revoked = [
        e for e in await _events(rt, staff_stream(staff_id)) if isinstance(e, StaffSessionsRevoked)
    ]
    assert [(e.reason, e.sessions) for e in revoked] == [("locked-out", 1)]
    with pytest.raises(RefreshRefused):
        await auth.refresh(rt, pair.refresh_token)
    assert _refusals(await _events(rt, sessions_stream(staff_id))) == ["revoked"]


@pytest.mark.obligation("SEC-2")
async def test_a_leaked_staff_refresh_token_dies_when_the_account_is_disabled(
    rt: ServiceRuntime,
) -> None:
    email, staff_id, secret = await _enrolled(rt)
    pair = await _signed_in(rt, email, secret)
    await staff.disable(rt, staff_id, ADMIN)
    with pytest.raises(RefreshRefused):
        await auth.refresh(rt, pair.refresh_token)
    with pytest.raises(AccountDisabled):  # the right password too
        await staff.sign_in(rt, email, PASSWORD, CLIENT, AGENT)
    await staff.enable(rt, staff_id, ADMIN)
    with pytest.raises(RefreshRefused):  # re-enabling does not bring old sessions back
        await auth.refresh(rt, pair.refresh_token)
    kinds = [type(e) for e in await _events(rt, staff_stream(staff_id))]
    assert StaffDisabled in kinds and StaffSessionsRevoked in kinds
    assert _refusals(await _events(rt, sessions_stream(staff_id))) == ["revoked", "revoked"]


@pytest.mark.obligation("SEC-2")
async def test_a_session_disabled_under_it_is_refused_even_if_not_revoked(
    rt: ServiceRuntime,
) -> None:
    """The refresh reads the account's state itself, not only the revocation."""
    email, staff_id, secret = await _enrolled(rt)
    pair = await _signed_in(rt, email, secret)
    async with rt.engine.begin() as conn:  # disabled by a path that revokes nothing
        await conn.execute(
            staff_members.update()
            .where(staff_members.c.staff_id == staff_id)
            .values(disabled_at=utcnow())
        )
    with pytest.raises(RefreshRefused, match="disabled"):
        await auth.refresh(rt, pair.refresh_token)
    assert _refusals(await _events(rt, sessions_stream(staff_id))) == ["staff-disabled"]


@pytest.mark.obligation("SEC-2")
async def test_a_refresh_carries_the_roles_the_staff_member_has_now(rt: ServiceRuntime) -> None:
    email, staff_id, secret = await _enrolled(rt)
    pair = await _signed_in(rt, email, secret)
    await staff.change_roles(rt, staff_id, [StaffRole.CUSTOMER_SERVICE], ADMIN)
    rotated = await auth.refresh(rt, pair.refresh_token)
    claims = jwt.decode(rotated.access_token, options={"verify_signature": False})
    assert claims["roles"] == ["customer-service"] and claims["amr"] == ["pwd", "otp"]
    [changed] = [
        e for e in await _events(rt, staff_stream(staff_id)) if isinstance(e, StaffRolesChanged)
    ]
    assert changed.previous_roles == [StaffRole.PRIVACY_OFFICER]


@pytest.mark.obligation("SEC-2")
async def test_a_totp_code_works_once(rt: ServiceRuntime) -> None:
    email, staff_id, secret = await _enrolled(rt)
    code = pyotp.TOTP(secret).now()
    first = await staff.sign_in(rt, email, PASSWORD, CLIENT, AGENT)
    assert first.challenge is not None
    await staff.second_factor(rt, first.challenge, code, None, CLIENT, AGENT)
    # an onlooker replays the code within its ninety seconds, with a challenge of their own
    second = await staff.sign_in(rt, email, PASSWORD, CLIENT, AGENT)
    assert second.challenge is not None
    with pytest.raises(WrongCredentials):
        await staff.second_factor(rt, second.challenge, code, None, CLIENT, AGENT)
    refused = [
        e.reason
        for e in await _events(rt, staff_stream(staff_id))
        if isinstance(e, StaffSecondFactorRefused)
    ]
    assert refused == ["code-reused"]
    async with rt.engine.connect() as conn:
        failed = (
            await conn.execute(
                select(staff_members.c.failed_attempts).where(staff_members.c.staff_id == staff_id)
            )
        ).scalar_one()
    assert failed == 1  # a replayed code counts toward the lock-out


@pytest.mark.obligation("SEC-2")
async def test_an_mfa_challenge_is_answered_once_and_only_by_its_client(
    rt: ServiceRuntime,
) -> None:
    email, staff_id, secret = await _enrolled(rt)
    step = await staff.sign_in(rt, email, PASSWORD, CLIENT, AGENT)
    assert step.challenge is not None
    code = pyotp.TOTP(secret).now()
    # relayed: another address, or the same address with another user agent
    with pytest.raises(ChallengeInvalid):
        await staff.second_factor(rt, step.challenge, code, None, "203.0.113.99", AGENT)
    with pytest.raises(ChallengeInvalid):
        await staff.second_factor(rt, step.challenge, code, None, CLIENT, "curl/8.0")
    await staff.second_factor(rt, step.challenge, code, None, CLIENT, AGENT)
    # replayed after its use, even with a code the attacker could not yet have seen used
    later = pyotp.TOTP(secret).at(datetime.now() + timedelta(seconds=30))
    with pytest.raises(ChallengeInvalid):
        await staff.second_factor(rt, step.challenge, later, None, CLIENT, AGENT)
    with pytest.raises(ChallengeInvalid):  # never issued
        await staff.second_factor(rt, "x" * 43, later, None, CLIENT, AGENT)
    refused = [
        e.reason
        for e in await _events(rt, staff_stream(staff_id))
        if isinstance(e, StaffSecondFactorRefused)
    ]
    assert refused == ["challenge-other-client", "challenge-other-client", "challenge-replayed"]
