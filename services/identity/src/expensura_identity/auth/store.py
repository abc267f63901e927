"""Sessions and sign-in attempts in SQL: refresh-token families, the throttle's counts, and
the keys that sign access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.cipher import KeyWrap
from expensura_events.signing import SigningKey, SigningKeys
from expensura_identity.tables import refresh_tokens, sign_in_attempts, signing_keys

# --- signing keys ---------------------------------------------------------------------------


def _keys(engine: AsyncEngine, master: KeyWrap) -> SigningKeys:
    return SigningKeys(engine, master, signing_keys, usage="jwt-signing")


async def active_key(engine: AsyncEngine, master: KeyWrap) -> SigningKey:
    return await _keys(engine, master).active()


async def published_keys(engine: AsyncEngine, master: KeyWrap) -> dict[str, Any]:
    return await _keys(engine, master).jwks()


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
        )
    )


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
    )


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


async def revoke_principal(conn: AsyncConnection, principal_id: str, at: datetime) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.principal_id == principal_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )


# --- the sign-in throttle ------------------------------------------------------------------


def _lock_id(key: bytes) -> int:
    """A 64-bit advisory-lock id for a throttle key (the keys are uniform HMACs)."""
    return int.from_bytes(key[:8], "big", signed=True)


async def lock_keys(conn: AsyncConnection, keys: Sequence[bytes]) -> None:
    """Serialise attempts on these keys until the transaction ends (in a fixed order, so two
    attempts sharing keys never wait for each other in a circle)."""
    for key in sorted(set(keys)):
        await conn.execute(select(func.pg_advisory_xact_lock(_lock_id(key))))


async def recent_attempts(
    conn: AsyncConnection, keys: Sequence[bytes], since: datetime
) -> dict[bytes, int]:
    counts = await conn.execute(
        select(sign_in_attempts.c.key, func.count())
        .where(sign_in_attempts.c.key.in_(list(keys)), sign_in_attempts.c.at >= since)
        .group_by(sign_in_attempts.c.key)
    )
    return {key: n for key, n in counts.all()}


async def add_attempt(conn: AsyncConnection, keys: Sequence[bytes], at: datetime) -> None:
    await conn.execute(sign_in_attempts.insert(), [{"key": k, "at": at} for k in keys])


async def clear_attempts(conn: AsyncConnection, key: bytes) -> None:
    """Forget every failure counted against this key (the account proved its password)."""
    await conn.execute(delete(sign_in_attempts).where(sign_in_attempts.c.key == key))


async def remove_attempt(conn: AsyncConnection, key: bytes, at: datetime) -> None:
    """Take back one attempt counted at `at` (rows of one key and time are alike)."""
    one = (
        select(literal_column("ctid"))
        .select_from(sign_in_attempts)
        .where(sign_in_attempts.c.key == key, sign_in_attempts.c.at == at)
        .limit(1)
        .scalar_subquery()
    )
    await conn.execute(delete(sign_in_attempts).where(literal_column("ctid") == one))
