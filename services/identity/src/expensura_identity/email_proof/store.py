"""E-mail proofs in SQL: the live code of each account (by keyed hash) and the account's
proof time. Read for update: two presentations of a code at once count as two attempts."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.retention import Expiry
from expensura_identity.email_proof.domain import IssuedCode
from expensura_identity.tables import accounts, email_proofs

t = email_proofs


async def live_code(conn: AsyncConnection, account_id: UUID) -> IssuedCode | None:
    row = (
        await conn.execute(select(t).where(t.c.account_id == account_id).with_for_update())
    ).one_or_none()
    if row is None:
        return None
    return IssuedCode(
        account_id=row.account_id,
        code_hash=row.code_hash,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        attempts=row.attempts,
        used_at=row.used_at,
    )


async def put_code(conn: AsyncConnection, code: IssuedCode) -> None:
    """The account's code, replacing any earlier one (there is one live code at most)."""
    values = {
        "code_hash": code.code_hash,
        "issued_at": code.issued_at,
        "expires_at": code.expires_at,
        "attempts": code.attempts,
        "used_at": code.used_at,
    }
    await conn.execute(
        insert(t)
        .values(account_id=code.account_id, **values)
        .on_conflict_do_update(index_elements=[t.c.account_id], set_=values)
    )


async def proven_at(
    conn: AsyncConnection, account_id: UUID, *, lock: bool = False
) -> datetime | None:
    """When the account's e-mail was proven; None if not (or no such account). `lock`:
    the account row is held until the transaction ends (one new code at a time)."""
    query = select(accounts.c.email_proven_at).where(accounts.c.account_id == account_id)
    if lock:
        query = query.with_for_update()
    return (await conn.execute(query)).scalar_one_or_none()


async def set_proven(conn: AsyncConnection, account_id: UUID, at: datetime) -> None:
    await conn.execute(
        update(accounts).where(accounts.c.account_id == account_id).values(email_proven_at=at)
    )


def code_expiry(retention_seconds: int) -> Expiry:
    """Codes expired longer ago than the retention, used or not: with no row, a presented
    code is refused ("no code was issued") and a new one may be issued at once."""
    return Expiry(t, "expires_at", timedelta(seconds=retention_seconds))
