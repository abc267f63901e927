"""Ed25519 signing keys kept in a service's database, private halves wrapped by the master
key's token-keys sub-key.

Identity signs access tokens with them; consent signs consent receipts; the sharing gateway
signs partner tokens. Public halves are published as a JWKS so that anyone can verify without
asking us.

A retired key is a distrusted key (SEC-4: identity retires a leaked token key as an
incident's containment): it never signs again and is no longer published, so what it
signed is refused wherever the JWKS is read.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    Table,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.cipher import TOKEN_KEYS, KeyWrap, MasterKey
from expensura_events.envelope import new_event_id, utcnow


def signing_key_table(name: str, metadata: MetaData) -> Table:
    return Table(
        name,
        metadata,
        Column("kid", Text, primary_key=True),
        Column("private_key_wrapped", LargeBinary, nullable=False),
        Column("public_jwk", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("retired_at", DateTime(timezone=True), nullable=True),
    )


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey


class SigningKeys:
    def __init__(
        self, engine: AsyncEngine, master: MasterKey | KeyWrap, table: Table, usage: str
    ) -> None:
        """`master`: the service's token-keys secret (`ServiceSecrets`), which outlives a
        master-key rotation; or the master key, whose token-keys sub-key does not."""
        self.engine, self.table, self.usage = engine, table, usage
        self.master = master.key_wrap(TOKEN_KEYS) if isinstance(master, MasterKey) else master
        self._lock = zlib.crc32(f"signing:{table.name}".encode())  # stable across processes

    def _aad(self, kid: str) -> str:
        return f"{self.usage}:{kid}"

    async def active(self) -> SigningKey:
        """The current key, created on first use (one creator at a time)."""
        t = self.table
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._lock})
            row = (
                await conn.execute(
                    select(t.c.kid, t.c.private_key_wrapped)
                    .where(t.c.retired_at.is_(None))
                    .order_by(t.c.created_at.desc())
                    .limit(1)
                )
            ).one_or_none()
            if row is not None:
                raw = self.master.unwrap(self._aad(row.kid), row.private_key_wrapped)
                return SigningKey(row.kid, Ed25519PrivateKey.from_private_bytes(raw))
            kid = str(new_event_id())
            private = Ed25519PrivateKey.generate()
            raw = private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            public_jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
            public_jwk |= {"kid": kid, "alg": "EdDSA", "use": "sig"}
            await conn.execute(
                t.insert().values(
                    kid=kid,
                    private_key_wrapped=self.master.wrap(self._aad(kid), raw),
                    public_jwk=json.dumps(public_jwk),
                    created_at=utcnow(),
                )
            )
            return SigningKey(kid, private)

    async def retire(self, conn: AsyncConnection, kid: str, at: datetime) -> bool:
        """Distrust the key from `at`, in the caller's transaction: it signs nothing more
        (`active` makes a new key) and leaves the JWKS, so what it signed is refused.
        Whether it existed and was live (False: unknown, or retired already)."""
        t = self.table
        retired = await conn.execute(
            update(t).where(t.c.kid == kid, t.c.retired_at.is_(None)).values(retired_at=at)
        )
        return retired.rowcount == 1

    async def exists(self, conn: AsyncConnection, kid: str) -> bool:
        """Whether the key was ever made here, live or retired."""
        t = self.table
        return (await conn.execute(select(t.c.kid).where(t.c.kid == kid))).first() is not None

    async def jwks(self) -> dict[str, Any]:
        """The keys still trusted: retired ones are left out, so what they signed is refused
        (a key is retired only when it can no longer be trusted, never on a schedule)."""
        t = self.table
        async with self.engine.connect() as conn:
            rows = (
                (await conn.execute(select(t.c.public_jwk).where(t.c.retired_at.is_(None))))
                .scalars()
                .all()
            )
        if not rows:
            await self.active()
            return await self.jwks()
        return {"keys": [json.loads(r) for r in rows]}
