"""The keys that sign access tokens: Ed25519, created on first use, published as a JWKS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.crypto import MasterKey
from expensura_events.envelope import new_event_id, utcnow
from expensura_identity.auth.tables import signing_keys

_KEY_LOCK = 0x4A574B53  # "JWKS": one creator at a time


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey


async def active_key(engine: AsyncEngine, master: MasterKey) -> SigningKey:
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _KEY_LOCK})
        row = (
            await conn.execute(
                select(signing_keys.c.kid, signing_keys.c.private_key_wrapped)
                .where(signing_keys.c.retired_at.is_(None))
                .order_by(signing_keys.c.created_at.desc())
                .limit(1)
            )
        ).one_or_none()
        if row is not None:
            raw = master.unwrap(f"jwt-signing:{row.kid}", row.private_key_wrapped)
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
            signing_keys.insert().values(
                kid=kid,
                private_key_wrapped=master.wrap(f"jwt-signing:{kid}", raw),
                public_jwk=json.dumps(public_jwk),
                created_at=utcnow(),
            )
        )
        return SigningKey(kid, private)


async def published_keys(engine: AsyncEngine) -> dict[str, Any]:
    """Active keys, and retired ones too: tokens they signed may still be in flight."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(signing_keys.c.public_jwk))).scalars().all()
    return {"keys": [json.loads(r) for r in rows]}
