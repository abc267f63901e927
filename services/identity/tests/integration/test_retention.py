"""Identity's retention worker on its database (ServiceDefinition.retention): MFA challenges,
refresh tokens of ended sessions and e-mail proof codes are deleted once past their end and
the retention, without giving anything back to an attacker: a deleted challenge, token or
code is unknown and refused. Over a long run the tables stay bounded."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import ColumnElement, Table, func, insert, select

from expensura_events.catalog.identity import (
    EmailOwnershipProofRefused,
    RefreshTokenReuseDetected,
    SessionRefreshRefused,
)
from expensura_events.catalog.identity_staff import StaffSecondFactorRefused
from expensura_events.envelope import Actor, utcnow
from expensura_events.notifications import Mail
from expensura_events.retention import Expiry, purge_expired
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import StaffRole
from expensura_identity.accounts import service as accounts
from expensura_identity.app import service_definition
from expensura_identity.auth import service as auth
from expensura_identity.auth.domain import (
    MFA_CHALLENGE_TTL,
    ChallengeInvalid,
    PrincipalKind,
    RefreshRefused,
    RefreshReuse,
    TokenPair,
    sessions_stream,
)
from expensura_identity.email_proof import service as email_proof
from expensura_identity.email_proof.domain import CODE_TTL, CodeRefused
from expensura_identity.settings import IdentitySettings, identity_settings
from expensura_identity.staff import service as staff
from expensura_identity.staff.domain import staff_stream
from expensura_identity.tables import email_proofs, mfa_challenges, refresh_tokens

PASSWORD = "a long staff password 2026"
CLIENT, AGENT = "198.51.100.24", "StaffConsole/1.0"
SECOND = timedelta(seconds=1)


def _rules(rt: ServiceRuntime) -> list[Expiry]:
    assert service_definition.retention is not None  # the runtime starts its worker
    return list(service_definition.retention(rt.settings))


def _rule(rt: ServiceRuntime, table: str) -> Expiry:
    [rule] = [r for r in _rules(rt) if r.name == table]
    return rule


def _settings(rt: ServiceRuntime) -> IdentitySettings:
    return identity_settings(rt)


async def _count(rt: ServiceRuntime, where: ColumnElement[bool], table: Table) -> int:
    async with rt.engine.connect() as conn:
        query = select(func.count()).select_from(table).where(where)
        return int((await conn.execute(query)).scalar_one())


async def _events(rt: ServiceRuntime, stream: str) -> list[object]:
    async with rt.engine.connect() as conn:
        return [e.payload for e in await rt.store.read_stream(conn, stream)]


async def _enrolled(rt: ServiceRuntime) -> tuple[str, str, str]:
    email = f"officer-{uuid.uuid4().hex[:8]}@expensura.example"
    staff_id = await staff.create_staff(
        rt, email, PASSWORD, [StaffRole.PRIVACY_OFFICER], Actor.system("tests")
    )
    setup = await staff.start_totp(rt, staff_id)
    # enrol with the previous step's code, so that the sign-in below has a fresh step
    totp = pyotp.TOTP(setup.secret)
    await staff.confirm_totp(rt, staff_id, totp.at(datetime.now() - timedelta(seconds=30)))
    return email, staff_id, setup.secret


def _code(mail: Mail) -> str:
    found = re.search(r"code is (\d{6})", mail.body)
    assert found is not None, mail.body
    return found.group(1)


@pytest.mark.obligation("SEC-2")
async def test_a_used_mfa_challenge_purged_after_its_retention_is_still_refused_on_replay(
    rt: ServiceRuntime,
) -> None:
    email, staff_id, secret = await _enrolled(rt)
    before = utcnow()
    step = await staff.sign_in(rt, email, PASSWORD, CLIENT, AGENT)
    assert step.challenge is not None
    await staff.second_factor(rt, step.challenge, pyotp.TOTP(secret).now(), None, CLIENT, AGENT)
    after = utcnow()
    rule = _rule(rt, "mfa_challenges")
    assert rule.keep == timedelta(seconds=_settings(rt).mfa_challenge_retention_seconds)
    mine = mfa_challenges.c.staff_id == staff_id
    # within its retention the used challenge is kept: a replay is refused as a replay
    await purge_expired(rt.engine, [rule], before + MFA_CHALLENGE_TTL + rule.keep - SECOND)
    assert await _count(rt, mine, mfa_challenges) == 1
    later = pyotp.TOTP(secret).at(datetime.now() + timedelta(seconds=30))
    with pytest.raises(ChallengeInvalid):
        await staff.second_factor(rt, step.challenge, later, None, CLIENT, AGENT)
    # past it the row is gone, and a replay is refused all the same (an unknown challenge)
    deleted = await purge_expired(rt.engine, [rule], after + MFA_CHALLENGE_TTL + rule.keep + SECOND)
    assert deleted["mfa_challenges"] >= 1
    assert await _count(rt, mine, mfa_challenges) == 0
    with pytest.raises(ChallengeInvalid):
        await staff.second_factor(rt, step.challenge, later, None, CLIENT, AGENT)
    refused = [
        e.reason
        for e in await _events(rt, staff_stream(staff_id))
        if isinstance(e, StaffSecondFactorRefused)
    ]
    # the replay of the deleted challenge names nobody: it is refused before any staff
    # member is known (as for a challenge never issued)
    assert refused == ["challenge-replayed"]


@pytest.mark.obligation("SEC-2")
async def test_a_family_past_cap_and_retention_is_purged_and_a_live_familys_used_tokens_are_kept(
    rt: ServiceRuntime,
) -> None:
    email, staff_id, secret = await _enrolled(rt)
    step = await staff.sign_in(rt, email, PASSWORD, CLIENT, AGENT)
    assert step.challenge is not None
    live = await staff.second_factor(
        rt, step.challenge, pyotp.TOTP(secret).now(), None, CLIENT, AGENT
    )
    rotated = await auth.refresh(rt, live.refresh_token)  # the first token is used now
    rule = _rule(rt, "refresh_tokens")
    assert rule.keep == timedelta(seconds=_settings(rt).refresh_token_retention_seconds)
    now = utcnow()
    key = await auth.signing_key(rt)

    async def ended(ago: timedelta) -> TokenPair:
        """A staff session of the same member whose cap was reached `ago`."""
        async with rt.engine.begin() as conn:
            return await auth.issue(
                conn,
                key,
                kind=PrincipalKind.STAFF.value,
                subject=staff_id,
                roles=[],
                amr=["pwd", "otp"],
                access_ttl=600,
                refresh_ttl=3600,
                family_started_at=now - ago - timedelta(hours=10),
                family_expires_at=now - ago,
            )

    gone = await ended(rule.keep + timedelta(minutes=1))
    recent = await ended(rule.keep - timedelta(minutes=1))

    def family(pair: TokenPair) -> ColumnElement[bool]:
        return refresh_tokens.c.family_id == pair.session_id

    deleted = await purge_expired(rt.engine, [rule], now)
    assert deleted["refresh_tokens"] >= 1
    assert await _count(rt, family(gone), refresh_tokens) == 0
    assert await _count(rt, family(recent), refresh_tokens) == 1
    assert await _count(rt, family(live), refresh_tokens) == 2  # used and current, both kept
    with pytest.raises(RefreshRefused, match="unknown"):
        await auth.refresh(rt, gone.refresh_token)
    with pytest.raises(RefreshRefused, match="maximum lifetime"):
        await auth.refresh(rt, recent.refresh_token)
    # reuse detection is intact for the live family: its used token revokes it
    with pytest.raises(RefreshReuse):
        await auth.refresh(rt, live.refresh_token)
    with pytest.raises(RefreshRefused, match="revoked"):
        await auth.refresh(rt, rotated.refresh_token)
    events = await _events(rt, sessions_stream(staff_id))
    assert [e.session_id for e in events if isinstance(e, RefreshTokenReuseDetected)] == [
        live.session_id
    ]
    assert [e.reason for e in events if isinstance(e, SessionRefreshRefused)] == [
        "session-cap",
        "revoked",
    ]


async def test_a_code_presented_after_its_row_is_purged_is_refused_and_a_new_one_can_be_asked_for(
    rt: ServiceRuntime,
) -> None:
    email = f"user-{uuid.uuid4().hex[:8]}@example.org"
    before = utcnow()
    answered = await accounts.sign_up(rt, email, None, "a long user password")
    after = utcnow()
    account = answered.account_id
    assert account is not None
    code = _code(answered.mail)
    rule = _rule(rt, "email_proofs")
    assert rule.keep == timedelta(seconds=_settings(rt).email_proof_retention_seconds)
    mine = email_proofs.c.account_id == account
    await purge_expired(rt.engine, [rule], before + CODE_TTL + rule.keep - SECOND)
    assert await _count(rt, mine, email_proofs) == 1  # within its retention: kept
    await purge_expired(rt.engine, [rule], after + CODE_TTL + rule.keep + SECOND)
    assert await _count(rt, mine, email_proofs) == 0
    # the code it held proves nothing now (and the attempt is recorded)
    with pytest.raises(CodeRefused, match="no code was issued"):
        await email_proof.prove(rt, account, code)
    refused = [
        e.reason
        for e in await _events(rt, email_proof.proof_stream(account))
        if isinstance(e, EmailOwnershipProofRefused)
    ]
    assert refused == ["no code was issued"]
    # a new code is issued at once and proves the address
    mail = await email_proof.new_code_for(rt, account)
    assert (await email_proof.prove(rt, account, _code(mail))).proven_at is not None


async def test_under_a_long_run_of_sign_ins_and_sign_ups_the_working_tables_stay_bounded(
    rt: ServiceRuntime,
) -> None:
    """Two simulated days, every hour 30 staff sign-ins (a challenge each, a session of 4
    refresh tokens capped at the staff working day) and 30 sign-ups (a code each), the
    cleaner hourly with all of identity's rules: each table holds at most its retention's
    worth (plus what is still live) and levels off instead of growing with what was written."""
    settings = _settings(rt)
    rules = _rules(rt)
    tag = f"run-{uuid.uuid4().hex[:8]}"
    per_hour, rotations, hours = 30, 4, 48
    cap = timedelta(seconds=settings.staff_session_max_seconds)
    start = utcnow() - timedelta(hours=hours)
    accounts_written: list[uuid.UUID] = []

    def hours_of(d: timedelta) -> int:
        return int(d.total_seconds()) // 3600

    keep = {r.name: r.keep for r in rules}
    bound = {
        "mfa_challenges": per_hour * (hours_of(keep["mfa_challenges"]) + 1),
        "refresh_tokens": per_hour
        * rotations
        * (hours_of(cap) + hours_of(keep["refresh_tokens"]) + 1),
        "email_proofs": per_hour * (hours_of(keep["email_proofs"]) + 1),
    }
    where: dict[str, Callable[[], ColumnElement[bool]]] = {
        "mfa_challenges": lambda: mfa_challenges.c.staff_id == tag,
        "refresh_tokens": lambda: refresh_tokens.c.principal_id == tag,
        "email_proofs": lambda: email_proofs.c.account_id.in_(accounts_written),
    }
    tables = {
        "mfa_challenges": mfa_challenges,
        "refresh_tokens": refresh_tokens,
        "email_proofs": email_proofs,
    }
    sizes: dict[str, list[int]] = {name: [] for name in bound}
    for hour in range(hours):
        at = start + timedelta(hours=hour)
        new_accounts = [uuid.uuid4() for _ in range(per_hour)]
        accounts_written += new_accounts
        async with rt.engine.begin() as conn:  # as the sign-ins and sign-ups write, in bulk
            await conn.execute(
                insert(mfa_challenges),
                [
                    {
                        "challenge_hash": f"{tag}-{hour}-{i}".encode(),
                        "staff_id": tag,
                        "client_binding": b"client",
                        "issued_at": at,
                        "expires_at": at + MFA_CHALLENGE_TTL,
                        "used_at": at + SECOND,
                    }
                    for i in range(per_hour)
                ],
            )
            await conn.execute(
                insert(refresh_tokens),
                [
                    {
                        "token_hash": f"{tag}-{hour}-{i}-{r}".encode(),
                        "family_id": uuid.UUID(int=hour * 1000 + i),
                        "principal_kind": "staff",
                        "principal_id": tag,
                        "roles": "",
                        "amr": "pwd,otp",
                        "issued_at": at,
                        "expires_at": at + cap,
                        "used_at": at if r < rotations - 1 else None,
                        "family_started_at": at,
                        "family_expires_at": at + cap,
                    }
                    for i in range(per_hour)
                    for r in range(rotations)
                ],
            )
            await conn.execute(
                insert(email_proofs),
                [
                    {
                        "account_id": a,
                        "code_hash": a.bytes,
                        "issued_at": at,
                        "expires_at": at + CODE_TTL,
                        "attempts": 0,
                    }
                    for a in new_accounts
                ],
            )
        await purge_expired(rt.engine, rules, at + timedelta(minutes=59))
        for name in bound:
            sizes[name].append(await _count(rt, where[name](), tables[name]))
    for name, written in (
        ("mfa_challenges", per_hour * hours),
        ("refresh_tokens", per_hour * rotations * hours),
        ("email_proofs", per_hour * hours),
    ):
        assert max(sizes[name]) <= bound[name], (name, sizes[name])
        assert sizes[name][-1] == sizes[name][-2] == sizes[name][-6], (name, sizes[name])
        assert written > bound[name] * 1.3, name  # far more were written than are kept
