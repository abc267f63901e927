"""One authentication service for app users and staff, against a real database: the
throttle's check-and-count and the staff lock-out stay exact under parallel guesses, and an
unknown account costs and answers what a wrong password does."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from expensura_events.catalog.identity import SignInRefused
from expensura_events.catalog.identity_staff import StaffLockedOut
from expensura_events.cipher import LOOKUP_HMAC
from expensura_events.envelope import Actor, utcnow
from expensura_events.retention import purge_expired
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import StaffRole
from expensura_identity.accounts import service as accounts
from expensura_identity.app import service_definition
from expensura_identity.auth import service as auth
from expensura_identity.auth import store as auth_store
from expensura_identity.auth.domain import (
    PrincipalKind,
    TooManyAttempts,
    WrongCredentials,
    account_throttle_key,
    client_throttle_key,
    sessions_stream,
)
from expensura_identity.staff import service as staff
from expensura_identity.staff.domain import MAX_FAILED_ATTEMPTS, AccountLocked, staff_stream
from expensura_identity.tables import sign_in_throttle, staff_members
from expensura_ops.testing.stack import LocalStack

from .conftest import runtime

PASSWORD = "a long staff password 2026"
PARALLEL = 50  # issue 11: fifty parallel guesses, exact counts


def _email(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}@expensura.example"


def _client() -> str:
    return f"203.0.113.{uuid.uuid4().int % 250}"


async def _attempts(rt: ServiceRuntime, key: bytes) -> int:
    """The failures counted against the key in its current window."""
    window = rt.settings.sign_in_window_seconds  # type: ignore[attr-defined]
    async with rt.engine.connect() as conn:
        return await auth_store.failures(conn, key, now=utcnow(), window_seconds=window)


async def _staff_row(rt: ServiceRuntime, staff_id: str) -> tuple[int, bool]:
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(staff_members.c.failed_attempts, staff_members.c.locked_at).where(
                    staff_members.c.staff_id == staff_id
                )
            )
        ).one()
    return row.failed_attempts, row.locked_at is not None


async def _events(rt: ServiceRuntime, stream: str) -> list[type]:
    async with rt.engine.connect() as conn:
        return [type(e.payload) for e in await rt.store.read_stream(conn, stream)]


async def _new_staff(rt: ServiceRuntime) -> tuple[str, str]:
    email = _email("analyst")
    staff_id = await staff.create_staff(
        rt, email, PASSWORD, [StaffRole.RISK_ANALYST], Actor.system("tests")
    )
    return email, staff_id


@pytest.mark.obligation("SEC-2")
async def test_parallel_wrong_staff_passwords_lock_the_account_at_exactly_the_threshold(
    provisioned: LocalStack,
) -> None:
    # only the lock-out counts here
    rt = runtime(provisioned, sign_in_failures_allowed=1000, sign_in_failures_per_client=1000)
    try:
        email, staff_id = await _new_staff(rt)
        client = _client()
        outcomes = await asyncio.gather(
            *(staff.sign_in(rt, email, "a wrong password!", client) for _ in range(PARALLEL)),
            return_exceptions=True,
        )
        assert Counter(type(o) for o in outcomes) == {WrongCredentials: PARALLEL}
        # Counting stops at the lock: exactly the threshold, not one lost, not one extra.
        assert await _staff_row(rt, staff_id) == (MAX_FAILED_ATTEMPTS, True)
        assert (await _events(rt, staff_stream(staff_id))).count(StaffLockedOut) == 1
        # A locked account answers "locked" only to the right password; a wrong one looks
        # like any wrong password, and no longer counts.
        with pytest.raises(AccountLocked):
            await staff.sign_in(rt, email, PASSWORD, client)
        with pytest.raises(WrongCredentials):
            await staff.sign_in(rt, email, "a wrong password!", client)
        assert await _staff_row(rt, staff_id) == (MAX_FAILED_ATTEMPTS, True)
        await staff.unlock(rt, staff_id, "staff-admin")
        assert await _staff_row(rt, staff_id) == (0, False)
        step = await staff.sign_in(rt, email, PASSWORD, client)
        assert step.enrolment_token is not None  # not enrolled yet: a token to enrol
    finally:
        await rt.close()


@pytest.mark.obligation("SEC-2")
async def test_parallel_failures_in_the_lock_out_step_itself_are_counted_exactly(
    rt: ServiceRuntime,
) -> None:
    """The sign-ins above reach the count one by one (the throttle's lock orders them);
    here twenty transactions count at once, as twenty wrong TOTP codes could."""
    email, staff_id = await _new_staff(rt)
    async with rt.engine.connect() as conn:
        found = await staff.StaffMembers().find(rt, conn, email)
    assert found is not None

    async def wrong() -> None:
        async with rt.engine.begin() as conn:
            await staff.StaffMembers().wrong_password(rt, conn, found)

    await asyncio.gather(*(wrong() for _ in range(PARALLEL)))
    assert await _staff_row(rt, staff_id) == (MAX_FAILED_ATTEMPTS, True)
    assert (await _events(rt, staff_stream(staff_id))).count(StaffLockedOut) == 1


@pytest.mark.obligation("SEC-2")
async def test_parallel_wrong_staff_passwords_meet_the_shared_throttle_first(
    rt: ServiceRuntime,
) -> None:
    email, staff_id = await _new_staff(rt)
    client = _client()
    outcomes = await asyncio.gather(
        *(staff.sign_in(rt, email, "a wrong password!", client) for _ in range(PARALLEL)),
        return_exceptions=True,
    )
    allowed = rt.settings.sign_in_failures_allowed  # type: ignore[attr-defined]
    assert Counter(type(o) for o in outcomes) == {
        WrongCredentials: allowed,
        TooManyAttempts: PARALLEL - allowed,
    }
    key = account_throttle_key(await rt.secrets.get(LOOKUP_HMAC), PrincipalKind.STAFF, email)
    assert await _attempts(rt, key) == allowed
    assert await _staff_row(rt, staff_id) == (MAX_FAILED_ATTEMPTS, True)


@pytest.mark.obligation("SEC-2")
async def test_parallel_wrong_user_passwords_are_counted_exactly_then_throttled(
    rt: ServiceRuntime,
) -> None:
    email = _email("user")
    opened = await accounts.sign_up(rt, email, None, PASSWORD)
    client = _client()
    outcomes = await asyncio.gather(
        *(auth.sign_in_user(rt, email, "a wrong password!", client) for _ in range(PARALLEL)),
        return_exceptions=True,
    )
    allowed = rt.settings.sign_in_failures_allowed  # type: ignore[attr-defined]
    assert Counter(type(o) for o in outcomes) == {
        WrongCredentials: allowed,
        TooManyAttempts: PARALLEL - allowed,
    }
    master = await rt.secrets.get(LOOKUP_HMAC)
    assert await _attempts(rt, account_throttle_key(master, PrincipalKind.USER, email)) == allowed
    assert await _attempts(rt, client_throttle_key(master, client)) == allowed
    refused = await _events(rt, sessions_stream(str(opened.account_id)))
    assert refused.count(SignInRefused) == allowed
    with pytest.raises(TooManyAttempts):  # the right password too, until the window passes
        await auth.sign_in_user(rt, email, PASSWORD, client)


@pytest.mark.obligation("SEC-2")
async def test_a_proven_password_forgives_the_accounts_failures_but_not_the_addresss(
    rt: ServiceRuntime,
) -> None:
    email = _email("user")
    await accounts.sign_up(rt, email, None, PASSWORD)
    client = _client()
    for _ in range(3):
        with pytest.raises(WrongCredentials):
            await auth.sign_in_user(rt, email, "a wrong password!", client)
    pair = await auth.sign_in_user(rt, email, PASSWORD, client)
    assert pair.access_token and pair.refresh_token
    master = await rt.secrets.get(LOOKUP_HMAC)
    assert await _attempts(rt, account_throttle_key(master, PrincipalKind.USER, email)) == 0
    assert await _attempts(rt, client_throttle_key(master, client)) == 3


@pytest.mark.obligation("SEC-2")
async def test_an_unknown_account_is_checked_against_a_dummy_hash_and_refused_alike(
    rt: ServiceRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str | None] = []
    verify = rt.passwords.verify

    async def spy(stored: str | None, secret: str) -> bool:
        checked.append(stored)
        return await verify(stored, secret)

    monkeypatch.setattr(rt.passwords, "verify", spy)
    email, staff_id = await _new_staff(rt)
    client = _client()
    for who in (_email("nobody"), email):
        with pytest.raises(WrongCredentials):
            await staff.sign_in(rt, who, "a wrong password!", client)
    with pytest.raises(WrongCredentials):
        await auth.sign_in_user(rt, _email("nobody"), "a wrong password!", client)
    # one argon2 verification each: against the dummy hash when there is no account
    assert [stored is None for stored in checked] == [True, False, True]
    assert await _staff_row(rt, staff_id) == (1, False)
    # the unknown account's attempt counts against its throttle key all the same
    unknown = _email("nobody")
    with pytest.raises(WrongCredentials):
        await auth.sign_in_user(rt, unknown, "a wrong password!", client)
    key = account_throttle_key(await rt.secrets.get(LOOKUP_HMAC), PrincipalKind.USER, unknown)
    assert await _attempts(rt, key) == 1


async def test_throttle_rows_past_their_retention_are_deleted_and_a_counting_window_is_kept(
    rt: ServiceRuntime,
) -> None:
    """The retention worker's purge (ServiceDefinition.retention): rows whose window started
    longer ago than the retention go, rows inside it stay and still count; repeated runs
    over a stream of fresh failures keep the table level."""
    assert service_definition.retention is not None
    rules = service_definition.retention(rt.settings)
    keep = timedelta(seconds=rt.settings.sign_in_throttle_retention_seconds)  # type: ignore[attr-defined]
    window = rt.settings.sign_in_window_seconds  # type: ignore[attr-defined]
    now = utcnow()
    old = [f"old-{uuid.uuid4().hex}".encode() for _ in range(400)]
    counting = [f"new-{uuid.uuid4().hex}".encode() for _ in range(400)]
    async with rt.engine.begin() as conn:
        await conn.execute(
            insert(sign_in_throttle),
            [
                {"key": k, "window_start": now - keep - timedelta(seconds=1), "failures": 3}
                for k in old
            ]
            + [
                {"key": k, "window_start": now - timedelta(seconds=5), "failures": 3}
                for k in counting
            ],
        )
    deleted = await purge_expired(rt.engine, rules, now, batch=150)
    assert deleted["sign_in_throttle"] >= 400

    async def present(keys: list[bytes]) -> int:
        async with rt.engine.connect() as conn:
            found = await conn.execute(
                select(sign_in_throttle.c.key).where(sign_in_throttle.c.key.in_(keys))
            )
        return len(found.all())

    assert await present(old) == 0 and await present(counting) == 400
    async with rt.engine.connect() as conn:  # a kept window still counts its failures
        assert await auth_store.failures(conn, counting[0], now=now, window_seconds=window) == 3
    # a long run: each hour 200 new keys fail once, the cleaner runs hourly
    sizes = []
    written: list[bytes] = []
    for hour in range(12):
        at = now + timedelta(hours=hour)
        keys = [f"run-{hour}-{i}-{uuid.uuid4().hex[:6]}".encode() for i in range(200)]
        written += keys
        async with rt.engine.begin() as conn:
            await conn.execute(
                insert(sign_in_throttle),
                [{"key": k, "window_start": at, "failures": 1} for k in keys],
            )
        await purge_expired(rt.engine, rules, at + timedelta(minutes=59))
        sizes.append(await present(written))
    hours_kept = int(keep.total_seconds()) // 3600 + 1
    assert max(sizes) <= 200 * hours_kept, sizes
    assert sizes[-1] == sizes[-2], sizes  # level, not growing
