"""Sessions and sign-in attempts in SQL: refresh-token families, MFA challenges, the
throttle's counters, and the keys that sign access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.cipher import KeyWrap
from expensura_events.retention import Expiry
from expensura_events.signing import SigningKey, SigningKeys
from expensura_identity.accounts.domain import AccountStatus
from expensura_identity.auth.domain import PrincipalKind, RefreshRefusal, Standing
from expensura_identity.tables import (
    accounts,
    mfa_challenges,
    refresh_tokens,
    sign_in_throttle,
    signing_keys,
    staff_members,
)

# --- signing keys ---------------------------------------------------------------------------


def _keys(engine: AsyncEngine, master: KeyWrap) -> SigningKeys:
    return SigningKeys(engine, master, signing_keys, usage="jwt-signing")


async def active_key(engine: AsyncEngine, master: KeyWrap) -> SigningKey:
    return await _keys(engine, master).active()


async def published_keys(engine: AsyncEngine, master: KeyWrap) -> dict[str, Any]:
    return await _keys(engine, master).jwks()


async def retire_key(
    conn: AsyncConnection, engine: AsyncEngine, master: KeyWrap, kid: str, at: datetime
) -> bool | None:
    """Distrust a signing key from `at`: True if it was live, False if retired already,
    None if there is no such key."""
    keys = _keys(engine, master)
    if await keys.retire(conn, kid, at):
        return True
    return False if await keys.exists(conn, kid) else None


# --- refresh tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshRecord:
    token_hash: bytes
    family_id: UUID
    principal_kind: str
    principal_id: str
    roles: list[str]
    amr: list[str]
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    family_started_at: datetime
    family_expires_at: datetime


async def insert_refresh(
    conn: AsyncConnection,
    token_hash: bytes,
    *,
    family_id: UUID,
    kind: str,
    principal_id: str,
    roles: Sequence[str],
    amr: Sequence[str],
    issued_at: datetime,
    expires_at: datetime,
    family_started_at: datetime,
    family_expires_at: datetime,
) -> None:
    await conn.execute(
        refresh_tokens.insert().values(
            token_hash=token_hash,
            family_id=family_id,
            principal_kind=kind,
            principal_id=principal_id,
            roles=",".join(roles),
            amr=",".join(amr),
            issued_at=issued_at,
            expires_at=expires_at,
            family_started_at=family_started_at,
            family_expires_at=family_expires_at,
        )
    )


async def refresh_principal(conn: AsyncConnection, token_hash: bytes) -> tuple[str, str] | None:
    """The kind and id of the principal a refresh token names (no lock: the caller locks the
    principal first, then the token, the order every revocation takes too)."""
    row = (
        await conn.execute(
            select(refresh_tokens.c.principal_kind, refresh_tokens.c.principal_id).where(
                refresh_tokens.c.token_hash == token_hash
            )
        )
    ).one_or_none()
    return None if row is None else (row.principal_kind, row.principal_id)


async def refresh_for_update(conn: AsyncConnection, token_hash: bytes) -> RefreshRecord | None:
    row = (
        await conn.execute(
            select(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return None
    return RefreshRecord(
        row.token_hash,
        row.family_id,
        row.principal_kind,
        row.principal_id,
        [r for r in row.roles.split(",") if r],
        [a for a in row.amr.split(",") if a],
        row.expires_at,
        row.used_at,
        row.revoked_at,
        row.family_started_at,
        row.family_expires_at,
    )


async def standing(conn: AsyncConnection, kind: str, principal_id: str) -> Standing:
    """The principal as they are now, their row share-locked until the transaction ends: a
    disable, lock-out or cancellation that commits meanwhile waits for this refresh and then
    revokes what it issued, or is seen by it."""
    if kind == PrincipalKind.USER.value:
        try:
            account_id = UUID(principal_id)
        except ValueError:
            return Standing(RefreshRefusal.PRINCIPAL_GONE, [])
        status = (
            await conn.execute(
                select(accounts.c.status)
                .where(accounts.c.account_id == account_id)
                .with_for_update(read=True)
            )
        ).scalar_one_or_none()
        if status is None:
            return Standing(RefreshRefusal.PRINCIPAL_GONE, [])
        if status != AccountStatus.OPEN.value:
            return Standing(RefreshRefusal.ACCOUNT_CLOSED, [])
        return Standing(None, [])
    row = (
        await conn.execute(
            select(staff_members.c.roles, staff_members.c.locked_at, staff_members.c.disabled_at)
            .where(staff_members.c.staff_id == principal_id)
            .with_for_update(read=True)
        )
    ).one_or_none()
    if row is None:
        return Standing(RefreshRefusal.PRINCIPAL_GONE, [])
    if row.disabled_at is not None:
        return Standing(RefreshRefusal.STAFF_DISABLED, [])
    if row.locked_at is not None:
        return Standing(RefreshRefusal.STAFF_LOCKED, [])
    return Standing(None, list(row.roles))


async def mark_used(conn: AsyncConnection, token_hash: bytes, at: datetime) -> None:
    await conn.execute(
        update(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).values(used_at=at)
    )


async def revoke_family(conn: AsyncConnection, family_id: UUID, at: datetime) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def revoke_principal(conn: AsyncConnection, principal_id: str, at: datetime) -> int:
    """Revoke every live family of the principal; how many families were still live."""
    revoked = await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.principal_id == principal_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
        .returning(refresh_tokens.c.family_id, refresh_tokens.c.family_expires_at)
    )
    return len({r.family_id for r in revoked.all() if r.family_expires_at > at})


def refresh_expiry(retention_seconds: int) -> Expiry:
    """Refresh tokens of families whose absolute end is longer ago than the retention: every
    token of such a family is refused for the cap before its use is looked at, so reuse
    detection never needs them; a deleted token is refused as unknown."""
    return Expiry(refresh_tokens, "family_expires_at", timedelta(seconds=retention_seconds))


# --- MFA challenges ---------------------------------------------------------------------------


async def insert_challenge(
    conn: AsyncConnection,
    challenge_hash: bytes,
    *,
    staff_id: str,
    binding: bytes,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        mfa_challenges.insert().values(
            challenge_hash=challenge_hash,
            staff_id=staff_id,
            client_binding=binding,
            issued_at=issued_at,
            expires_at=expires_at,
        )
    )


@dataclass(frozen=True)
class ChallengeRecord:
    staff_id: str
    client_binding: bytes
    expires_at: datetime
    used_at: datetime | None


async def challenge_for_update(
    conn: AsyncConnection, challenge_hash: bytes
) -> ChallengeRecord | None:
    row = (
        await conn.execute(
            select(mfa_challenges)
            .where(mfa_challenges.c.challenge_hash == challenge_hash)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return None
    return ChallengeRecord(row.staff_id, row.client_binding, row.expires_at, row.used_at)


async def consume_challenge(conn: AsyncConnection, challenge_hash: bytes, at: datetime) -> bool:
    """unused → used; False if it was used already (the row is locked: it cannot be)."""
    changed = await conn.execute(
        update(mfa_challenges)
        .where(
            mfa_challenges.c.challenge_hash == challenge_hash, mfa_challenges.c.used_at.is_(None)
        )
        .values(used_at=at)
    )
    return changed.rowcount == 1


def challenge_expiry(retention_seconds: int) -> Expiry:
    """MFA challenges expired longer ago than the retention, used or not: a deleted one is
    unknown to `challenge_for_update`, so a replay of it is refused all the same."""
    return Expiry(mfa_challenges, "expires_at", timedelta(seconds=retention_seconds))


# --- the sign-in throttle ------------------------------------------------------------------


@dataclass(frozen=True)
class Counted:
    """One attempt against one key: admitted (counted, `failures` now), or refused because
    the key's window is full (`window_start` tells when it ends)."""

    admitted: bool
    failures: int
    window_start: datetime


async def count_attempt(
    conn: AsyncConnection, key: bytes, *, limit: int, now: datetime, window_seconds: int
) -> Counted:
    """Check and count in one statement: the key's failure count in its window goes up by
    one unless it reached `limit` (a window older than `window_seconds` starts again at one).
    The row stays locked until the transaction ends, so parallel attempts on a key queue
    here and each sees the count the one before it left."""
    since = now - timedelta(seconds=window_seconds)
    table = sign_in_throttle
    insert = pg_insert(table).values(key=key, window_start=now, failures=1)
    stale = table.c.window_start <= since
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "window_start": case((stale, now), else_=table.c.window_start),
            "failures": case((stale, 1), else_=table.c.failures + 1),
        },
        # No update, no row returned: the window is full. (The conflicting row is locked all
        # the same, so the refusal too waits its turn.)
        where=or_(stale, table.c.failures < limit),
    ).returning(table.c.failures, table.c.window_start)
    row = (await conn.execute(statement)).one_or_none()
    if row is not None:
        return Counted(True, row.failures, row.window_start)
    full = (
        await conn.execute(select(table.c.failures, table.c.window_start).where(table.c.key == key))
    ).one()
    return Counted(False, full.failures, full.window_start)


def throttle_expiry(retention_seconds: int) -> Expiry:
    """Throttle rows whose window started longer ago than the retention (past the window)."""
    return Expiry(sign_in_throttle, "window_start", timedelta(seconds=retention_seconds))


async def clear_attempts(conn: AsyncConnection, key: bytes) -> None:
    """Forget every failure counted against this key (the account proved its password)."""
    await conn.execute(delete(sign_in_throttle).where(sign_in_throttle.c.key == key))


async def remove_attempt(conn: AsyncConnection, key: bytes) -> None:
    """Take back one attempt counted against this key (it proved its password)."""
    await conn.execute(
        update(sign_in_throttle)
        .where(sign_in_throttle.c.key == key, sign_in_throttle.c.failures > 0)
        .values(failures=sign_in_throttle.c.failures - 1)
    )


async def failures(conn: AsyncConnection, key: bytes, *, now: datetime, window_seconds: int) -> int:
    """The failures counted against the key in its current window."""
    row = (
        await conn.execute(
            select(sign_in_throttle.c.failures, sign_in_throttle.c.window_start).where(
                sign_in_throttle.c.key == key
            )
        )
    ).one_or_none()
    if row is None or row.window_start <= now - timedelta(seconds=window_seconds):
        return 0
    return int(row.failures)
