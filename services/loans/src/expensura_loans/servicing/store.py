"""Loans' SQL for servicing: loans and the payments applied to them. Terms, balances and
payments are stored sealed; opening them is the service's (it holds the keys)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.tables import loan_payments, loans


@dataclass(frozen=True)
class StoredLoan:
    loan_id: UUID
    application_id: UUID
    subject_id: str
    state: str
    terms_sealed: dict[str, Any]
    balance_sealed: dict[str, Any] | None
    offered_at: datetime


def _stored(row: Any) -> StoredLoan:
    return StoredLoan(
        loan_id=row.loan_id,
        application_id=row.application_id,
        subject_id=row.subject_id,
        state=row.state,
        terms_sealed=row.terms_sealed,
        balance_sealed=row.balance_sealed,
        offered_at=row.offered_at,
    )


async def add_loan(
    conn: AsyncConnection,
    *,
    loan_id: UUID,
    application_id: UUID,
    subject_id: str,
    state: str,
    terms_sealed: dict[str, Any],
    at: datetime,
) -> None:
    await conn.execute(
        loans.insert().values(
            loan_id=loan_id,
            application_id=application_id,
            subject_id=subject_id,
            state=state,
            terms_sealed=terms_sealed,
            offered_at=at,
            updated_at=at,
        )
    )


async def loan(conn: AsyncConnection, loan_id: UUID, *, lock: bool = False) -> StoredLoan | None:
    """One loan; `lock`: for update, so that its changes (a payment) happen one at a time."""
    query = select(loans).where(loans.c.loan_id == loan_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _stored(row)


async def loan_ids_in_states(conn: AsyncConnection, states: list[str]) -> list[UUID]:
    rows = await conn.execute(
        select(loans.c.loan_id).where(loans.c.state.in_(states)).order_by(loans.c.offered_at)
    )
    return [r.loan_id for r in rows]


async def loans_of(conn: AsyncConnection, subject_id: str) -> list[StoredLoan]:
    rows = await conn.execute(
        select(loans).where(loans.c.subject_id == subject_id).order_by(loans.c.offered_at)
    )
    return [_stored(r) for r in rows]


async def update_loan(
    conn: AsyncConnection,
    loan_id: UUID,
    *,
    state: str,
    balance_sealed: dict[str, Any] | None,
    at: datetime,
) -> None:
    await conn.execute(
        update(loans)
        .where(loans.c.loan_id == loan_id)
        .values(state=state, balance_sealed=balance_sealed, updated_at=at)
    )


async def payment(
    conn: AsyncConnection, loan_id: UUID, idempotency_key: str
) -> dict[str, Any] | None:
    """How the payment with this key was applied (sealed), if it was."""
    found = await conn.execute(
        select(loan_payments.c.applied_sealed).where(
            loan_payments.c.loan_id == loan_id,
            loan_payments.c.idempotency_key == idempotency_key,
        )
    )
    applied: dict[str, Any] | None = found.scalar_one_or_none()
    return applied


async def add_payment(
    conn: AsyncConnection,
    *,
    loan_id: UUID,
    idempotency_key: str,
    subject_id: str,
    applied_sealed: dict[str, Any],
    at: datetime,
) -> None:
    await conn.execute(
        loan_payments.insert().values(
            loan_id=loan_id,
            idempotency_key=idempotency_key,
            subject_id=subject_id,
            applied_sealed=applied_sealed,
            received_at=at,
        )
    )


async def delete_loans_of(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    payments = await conn.execute(
        delete(loan_payments).where(loan_payments.c.subject_id == subject_id)
    )
    removed = await conn.execute(delete(loans).where(loans.c.subject_id == subject_id))
    return {"loan_payments": payments.rowcount, "loans": removed.rowcount}
