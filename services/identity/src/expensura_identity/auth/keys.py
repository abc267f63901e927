"""The keys that sign access tokens (identity's `signing_keys` table)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.cipher import MasterKey
from expensura_events.signing import SigningKey, SigningKeys
from expensura_identity.auth.tables import signing_keys

__all__ = ["SigningKey", "active_key", "published_keys"]


def _keys(engine: AsyncEngine, master: MasterKey) -> SigningKeys:
    return SigningKeys(engine, master, signing_keys, usage="jwt-signing")


async def active_key(engine: AsyncEngine, master: MasterKey) -> SigningKey:
    return await _keys(engine, master).active()


async def published_keys(engine: AsyncEngine, master: MasterKey) -> dict[str, Any]:
    return await _keys(engine, master).jwks()
