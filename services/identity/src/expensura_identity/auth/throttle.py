"""Sign-in throttling: failed attempts per account and per client address in a window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import utcnow
from expensura_identity.auth.tables import sign_in_attempts


async def too_many_failures(
    conn: AsyncConnection, limits: dict[bytes, int], *, window_seconds: int
) -> bool:
    """True if any key (account, client address) reached its limit within the window."""
    since = utcnow() - timedelta(seconds=window_seconds)
    counts = await conn.execute(
        select(sign_in_attempts.c.key, func.count())
        .where(sign_in_attempts.c.key.in_(list(limits)), sign_in_attempts.c.at >= since)
        .group_by(sign_in_attempts.c.key)
    )
    return any(n >= limits[key] for key, n in counts.all())


async def record_failure(conn: AsyncConnection, keys: list[bytes]) -> None:
    now = utcnow()
    await conn.execute(sign_in_attempts.insert(), [{"key": k, "at": now} for k in keys])


async def clear(conn: AsyncConnection, key: bytes) -> None:
    await conn.execute(delete(sign_in_attempts).where(sign_in_attempts.c.key == key))
