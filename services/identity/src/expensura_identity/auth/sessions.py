"""Issuing and rotating tokens. Used by app-user sign-in and by staff sign-in alike."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.auth import AUDIENCE, ISSUER
from expensura_events.envelope import utcnow
from expensura_identity.auth.keys import SigningKey
from expensura_identity.auth.tables import refresh_tokens


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: UUID


class RefreshRefused(Exception):
    """Unknown, expired or revoked refresh token."""


class RefreshReuse(Exception):
    """A refresh token was presented twice: its whole family is now revoked."""

    def __init__(self, family_id: UUID, principal_id: str) -> None:
        super().__init__("refresh token reuse")
        self.family_id, self.principal_id = family_id, principal_id


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _access_token(
    key: SigningKey,
    kind: str,
    subject: str,
    roles: list[str],
    amr: list[str],
    session_id: UUID,
    ttl: int,
) -> str:
    now = utcnow()
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "typ": kind,
        "roles": roles,
        "amr": amr,
        "sid": str(session_id),
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": str(uuid4()),
    }
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


async def issue(
    conn: AsyncConnection,
    key: SigningKey,
    *,
    kind: str,
    subject: str,
    roles: list[str],
    amr: list[str],
    access_ttl: int,
    refresh_ttl: int,
    family_id: UUID | None = None,
) -> TokenPair:
    family = family_id or uuid4()
    refresh = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    now = utcnow()
    await conn.execute(
        refresh_tokens.insert().values(
            token_hash=token_hash(refresh),
            family_id=family,
            principal_kind=kind,
            principal_id=subject,
            roles=",".join(roles),
            amr=",".join(amr),
            issued_at=now,
            expires_at=now + timedelta(seconds=refresh_ttl),
        )
    )
    return TokenPair(
        _access_token(key, kind, subject, roles, amr, family, access_ttl),
        refresh,
        access_ttl,
        family,
    )


async def rotate(
    conn: AsyncConnection, key: SigningKey, refresh: str, *, access_ttl: int, refresh_ttl: int
) -> TokenPair:
    row = (
        await conn.execute(
            select(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash(refresh))
            .with_for_update()
        )
    ).one_or_none()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise RefreshRefused("unknown, expired or revoked refresh token")
    if row.used_at is not None:
        await revoke_family(conn, row.family_id)
        raise RefreshReuse(row.family_id, row.principal_id)
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == row.token_hash)
        .values(used_at=now)
    )
    return await issue(
        conn,
        key,
        kind=row.principal_kind,
        subject=row.principal_id,
        roles=[r for r in row.roles.split(",") if r],
        amr=[a for a in row.amr.split(",") if a],
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        family_id=row.family_id,
    )


async def revoke_family(conn: AsyncConnection, family_id: UUID) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_principal(conn: AsyncConnection, principal_id: str) -> None:
    """Sign a principal out everywhere (account cancelled, staff locked out)."""
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.principal_id == principal_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
