"""Staff use cases against a real database: the second factor and its lock-out, and
customer look-ups that confirm the customer first (USE-4) and are recorded (SEC-3)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pyotp
import pytest
from sqlalchemy import select

from expensura_events.catalog.identity_staff import (
    CustomerIdentityCheckFailed,
    StaffLockedOut,
    StaffSecondFactorRefused,
)
from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.cipher import PSEUDONYM
from expensura_events.envelope import Actor
from expensura_events.runtime import ServiceRuntime
from expensura_events.streams import access_stream
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_identity.accounts import service as accounts
from expensura_identity.auth.domain import WrongCredentials
from expensura_identity.staff import service as staff
from expensura_identity.staff.domain import (
    AccountLocked,
    IdentityNotConfirmed,
    IllegalTransition,
    RoleMayNotUse,
    pseudonym,
    staff_stream,
)
from expensura_identity.tables import staff_members

PASSWORD = "a long staff password 2026"
CLIENT = "198.51.100.7"


async def _enrolled(rt: ServiceRuntime, role: StaffRole) -> tuple[str, str, str, list[str]]:
    email = f"{role.value}-{uuid.uuid4().hex[:6]}@expensura.example"
    staff_id = await staff.create_staff(rt, email, PASSWORD, [role], Actor.system("tests"))
    setup = await staff.start_totp(rt, staff_id)
    with pytest.raises(IllegalTransition):
        await staff.confirm_totp(rt, f"staff-{uuid.uuid4().hex[:12]}", "123456")
    codes = await staff.confirm_totp(rt, staff_id, pyotp.TOTP(setup.secret).now())
    with pytest.raises(IllegalTransition):  # enrolled: no second secret
        await staff.start_totp(rt, staff_id)
    return email, staff_id, setup.secret, codes


async def _challenge(rt: ServiceRuntime, email: str) -> str:
    step = await staff.sign_in(rt, email, PASSWORD, CLIENT)
    assert step.challenge is not None and step.enrolment_token is None
    return step.challenge


def _wrong(secret: str) -> str:
    now = pyotp.TOTP(secret).now()
    return next(c for c in ("000000", "111111", "222222") if c != now)


@pytest.mark.obligation("SEC-2")
async def test_parallel_wrong_codes_lock_the_account_once_at_the_threshold(
    rt: ServiceRuntime,
) -> None:
    email, staff_id, secret, codes = await _enrolled(rt, StaffRole.SECURITY_OFFICER)
    challenge = await _challenge(rt, email)
    outcomes = await asyncio.gather(
        *(staff.second_factor(rt, challenge, _wrong(secret), None, CLIENT) for _ in range(50)),
        return_exceptions=True,
    )
    # Five wrong codes count and lock; the rest find the account locked.
    assert Counter(type(o) for o in outcomes) == {WrongCredentials: 5, AccountLocked: 45}
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(select(staff_members).where(staff_members.c.staff_id == staff_id))
        ).one()
        stream = await rt.store.read_stream(conn, staff_stream(staff_id))
    assert row.failed_attempts == 5 and row.locked_at is not None
    assert [type(e.payload) for e in stream].count(StaffLockedOut) == 1
    refusals = [e.payload for e in stream if isinstance(e.payload, StaffSecondFactorRefused)]
    assert [r.reason for r in refusals] == ["wrong-code"] * 5  # each counted one is logged
    with pytest.raises(AccountLocked):  # even the right code, until an administrator unlocks
        await staff.second_factor(rt, challenge, pyotp.TOTP(secret).now(), None, CLIENT)
    await staff.unlock(rt, staff_id, "staff-admin")
    pair = await staff.second_factor(rt, challenge, None, codes[0], CLIENT)
    assert pair.access_token
    with pytest.raises(WrongCredentials):  # a recovery code works once
        await staff.second_factor(rt, await _challenge(rt, email), None, codes[0], CLIENT)


@pytest.mark.obligation("USE-4", "SEC-2", "SEC-3")
async def test_a_look_up_confirms_the_customer_first_and_every_outcome_is_recorded(
    rt: ServiceRuntime,
) -> None:
    email = f"customer-{uuid.uuid4().hex[:6]}@example.com"
    customer = str(
        (await accounts.sign_up(rt, email, "+14155550177", "a long password")).account_id
    )
    _, agent, _, _ = await _enrolled(rt, StaffRole.CUSTOMER_SERVICE)
    roles = [StaffRole.CUSTOMER_SERVICE.value]

    def ask(last4: str, purpose: Purpose = Purpose.CUSTOMER_CARE) -> staff.CustomerLookup:
        return staff.CustomerLookup(customer, email.upper(), last4, "CASE-2026-7", purpose)

    async def access_events() -> list[object]:
        async with rt.engine.connect() as conn:
            return [e.payload for e in await rt.store.read_stream(conn, access_stream(customer))]

    with pytest.raises(RoleMayNotUse):
        await staff.customer_lookup(rt, agent, roles, ask("0177", Purpose.MARKETING))
    assert await access_events() == []  # refused before anything was read
    with pytest.raises(IdentityNotConfirmed):
        await staff.customer_lookup(rt, agent, roles, ask("9999"))
    [failed] = await access_events()
    assert isinstance(failed, CustomerIdentityCheckFailed)
    assert failed.case_reference == "CASE-2026-7"
    found = await staff.customer_lookup(rt, agent, roles, ask("0177"))
    assert (found.email, found.phone) == (email, "+14155550177")
    [_, read] = await access_events()
    assert isinstance(read, PersonalDataAccessed)
    assert read.categories == ["pd:Contact"] and read.fields == ["email", "phone"]
    [line] = await staff.my_access_log(rt, customer)
    assert line.who == pseudonym(await rt.secrets.get(PSEUDONYM), agent)
    assert (line.role, line.purpose, line.case_reference) == (
        "customer-service",
        "customer-care",
        "CASE-2026-7",
    )
