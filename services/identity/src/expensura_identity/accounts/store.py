"""Accounts in SQL: the row that lets an account sign in (never its contact details)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_identity.accounts.domain import AccountStatus, EmailTaken
from expensura_identity.tables import accounts


@dataclass(frozen=True)
class AccountRecord:
    account_id: UUID
    password_hash: str
    status: AccountStatus

    @property
    def principal_id(self) -> str:
        return str(self.account_id)


async def insert(
    conn: AsyncConnection,
    account_id: UUID,
    email_lookup: bytes,
    password_hash: str,
    opened_at: datetime,
) -> None:
    """Raises EmailTaken if the e-mail belongs to another account (the transaction is then
    unusable: the caller lets it roll back)."""
    try:
        await conn.execute(
            accounts.insert().values(
                account_id=account_id,
                email_lookup=email_lookup,
                password_hash=password_hash,
                status=AccountStatus.OPEN.value,
                opened_at=opened_at,
            )
        )
    except IntegrityError:
        raise EmailTaken() from None


async def by_email(conn: AsyncConnection, email_lookup: bytes) -> AccountRecord | None:
    row = (
        await conn.execute(
            select(accounts.c.account_id, accounts.c.password_hash, accounts.c.status).where(
                accounts.c.email_lookup == email_lookup
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return AccountRecord(row.account_id, row.password_hash, AccountStatus(row.status))


async def set_email_lookup(conn: AsyncConnection, account_id: UUID, email_lookup: bytes) -> None:
    """Sign-in follows a corrected e-mail. Raises EmailTaken as `insert` does."""
    try:
        await conn.execute(
            update(accounts)
            .where(accounts.c.account_id == account_id)
            .values(email_lookup=email_lookup)
        )
    except IntegrityError:
        raise EmailTaken() from None
