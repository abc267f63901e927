"""Loans' SQL for credit reporting: furnishing runs, the lines furnished (sealed), bureau
disputes. Opening sealed values is the service's (it holds the keys)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.tables import bureau_disputes, furnished_accounts, furnishing_runs, loans

# A loan with a history to furnish: disbursed at some point (an offer never accepted has none).
FURNISHABLE_STATES = ("active", "delinquent", "paid-off", "charged-off", "closed")


@dataclass(frozen=True)
class StoredRun:
    period: str
    header: str
    sha256: str
    record_count: int
    status_counts: dict[str, int]
    produced_at: datetime
    delivered_at: datetime | None
    bureau_file_id: str | None
    delivery_attempts: int
    last_delivery_error: str | None


@dataclass(frozen=True)
class StoredLine:
    account_number: str
    loan_id: UUID
    subject_id: str
    record_sealed: dict[str, Any]


@dataclass(frozen=True)
class StoredDispute:
    dispute_id: str
    account_number: str
    loan_id: UUID | None
    subject_id: str
    received_at: datetime
    deadline: datetime
    records_agree: bool | None
    outcome: str | None
    correction_sealed: dict[str, Any] | None
    answered_at: datetime | None
    answer_sent_at: datetime | None
    reported_in: str | None


def _run(row: Any) -> StoredRun:
    return StoredRun(
        period=row.period,
        header=row.header,
        sha256=row.sha256,
        record_count=row.record_count,
        status_counts=dict(row.status_counts),
        produced_at=row.produced_at,
        delivered_at=row.delivered_at,
        bureau_file_id=row.bureau_file_id,
        delivery_attempts=row.delivery_attempts,
        last_delivery_error=row.last_delivery_error,
    )


def _dispute(row: Any) -> StoredDispute:
    return StoredDispute(
        dispute_id=row.dispute_id,
        account_number=row.account_number,
        loan_id=row.loan_id,
        subject_id=row.subject_id,
        received_at=row.received_at,
        deadline=row.deadline,
        records_agree=row.records_agree,
        outcome=row.outcome,
        correction_sealed=row.correction_sealed,
        answered_at=row.answered_at,
        answer_sent_at=row.answer_sent_at,
        reported_in=row.reported_in,
    )


# --- loans to furnish -----------------------------------------------------------------------


@dataclass(frozen=True)
class FurnishableLoan:
    loan_id: UUID
    subject_id: str
    terms_sealed: dict[str, Any]


async def furnishable_loans(conn: AsyncConnection) -> list[FurnishableLoan]:
    rows = await conn.execute(
        select(loans.c.loan_id, loans.c.subject_id, loans.c.terms_sealed)
        .where(loans.c.state.in_(FURNISHABLE_STATES))
        .order_by(loans.c.loan_id)
    )
    return [FurnishableLoan(r.loan_id, r.subject_id, r.terms_sealed) for r in rows]


async def loan_terms(conn: AsyncConnection, loan_id: UUID) -> FurnishableLoan | None:
    row = (
        await conn.execute(
            select(loans.c.loan_id, loans.c.subject_id, loans.c.terms_sealed).where(
                loans.c.loan_id == loan_id
            )
        )
    ).first()
    return None if row is None else FurnishableLoan(row.loan_id, row.subject_id, row.terms_sealed)


# --- runs -----------------------------------------------------------------------------------


async def run(conn: AsyncConnection, period: str) -> StoredRun | None:
    row = (
        await conn.execute(select(furnishing_runs).where(furnishing_runs.c.period == period))
    ).first()
    return None if row is None else _run(row)


async def claim_run(
    conn: AsyncConnection,
    *,
    period: str,
    header: str,
    sha256: str,
    record_count: int,
    status_counts: dict[str, int],
    at: datetime,
) -> bool:
    """Record the month's run, once: False if it exists (a concurrent run that committed
    first makes this wait, then do nothing)."""
    stmt = (
        insert(furnishing_runs)
        .values(
            period=period,
            header=header,
            sha256=sha256,
            record_count=record_count,
            status_counts=status_counts,
            produced_at=at,
            delivery_attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["period"])
        .returning(furnishing_runs.c.period)
    )
    return (await conn.execute(stmt)).first() is not None


async def undelivered_periods(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(
        select(furnishing_runs.c.period)
        .where(furnishing_runs.c.delivered_at.is_(None))
        .order_by(furnishing_runs.c.period)
    )
    return [r.period for r in rows]


async def lock_run(conn: AsyncConnection, period: str) -> StoredRun | None:
    """The run, locked: one delivery attempt at a time."""
    row = (
        await conn.execute(
            select(furnishing_runs).where(furnishing_runs.c.period == period).with_for_update()
        )
    ).first()
    return None if row is None else _run(row)


async def record_delivery(
    conn: AsyncConnection, period: str, *, bureau_file_id: str, at: datetime
) -> None:
    await conn.execute(
        update(furnishing_runs)
        .where(furnishing_runs.c.period == period)
        .values(
            delivered_at=at,
            bureau_file_id=bureau_file_id,
            delivery_attempts=furnishing_runs.c.delivery_attempts + 1,
            last_delivery_error=None,
        )
    )


async def record_failed_delivery(conn: AsyncConnection, period: str, error: str) -> None:
    await conn.execute(
        update(furnishing_runs)
        .where(furnishing_runs.c.period == period)
        .values(
            delivery_attempts=furnishing_runs.c.delivery_attempts + 1,
            last_delivery_error=error[:500],
        )
    )


async def last_period_before(conn: AsyncConnection, period: str) -> str | None:
    found: str | None = (
        await conn.execute(
            select(func.max(furnishing_runs.c.period)).where(furnishing_runs.c.period < period)
        )
    ).scalar_one_or_none()
    return found


# --- lines ----------------------------------------------------------------------------------


async def add_lines(conn: AsyncConnection, period: str, lines: list[StoredLine]) -> None:
    if lines:
        await conn.execute(
            furnished_accounts.insert(),
            [
                {
                    "period": period,
                    "account_number": line.account_number,
                    "loan_id": line.loan_id,
                    "subject_id": line.subject_id,
                    "record_sealed": line.record_sealed,
                }
                for line in lines
            ],
        )


async def lines_of(conn: AsyncConnection, period: str) -> list[StoredLine]:
    rows = await conn.execute(
        select(furnished_accounts)
        .where(furnished_accounts.c.period == period)
        .order_by(furnished_accounts.c.account_number)
    )
    return [StoredLine(r.account_number, r.loan_id, r.subject_id, r.record_sealed) for r in rows]


async def last_line(
    conn: AsyncConnection, account_number: str, before: datetime
) -> tuple[str, StoredLine] | None:
    """The account's line in the latest file produced before `before`, with its period."""
    row = (
        await conn.execute(
            select(furnished_accounts)
            .join(furnishing_runs, furnishing_runs.c.period == furnished_accounts.c.period)
            .where(
                furnished_accounts.c.account_number == account_number,
                furnishing_runs.c.produced_at <= before,
            )
            .order_by(furnished_accounts.c.period.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return row.period, StoredLine(
        row.account_number, row.loan_id, row.subject_id, row.record_sealed
    )


# --- disputes -------------------------------------------------------------------------------


async def last_dispute_id(conn: AsyncConnection) -> str | None:
    """The bureau's cursor: its dispute ids sort in the order it received them."""
    found: str | None = (
        await conn.execute(select(func.max(bureau_disputes.c.dispute_id)))
    ).scalar_one_or_none()
    return found


async def add_dispute(
    conn: AsyncConnection,
    *,
    dispute_id: str,
    account_number: str,
    loan_id: UUID | None,
    subject_id: str,
    reason_sealed: dict[str, Any],
    received_at: datetime,
    deadline: datetime,
    records_agree: bool | None,
) -> bool:
    """Record a dispute, once: False if it was recorded before."""
    stmt = (
        insert(bureau_disputes)
        .values(
            dispute_id=dispute_id,
            account_number=account_number,
            loan_id=loan_id,
            subject_id=subject_id,
            reason_sealed=reason_sealed,
            received_at=received_at,
            deadline=deadline,
            records_agree=records_agree,
        )
        .on_conflict_do_nothing(index_elements=["dispute_id"])
        .returning(bureau_disputes.c.dispute_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def dispute(
    conn: AsyncConnection, dispute_id: str, *, lock: bool = False
) -> StoredDispute | None:
    query = select(bureau_disputes).where(bureau_disputes.c.dispute_id == dispute_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _dispute(row)


async def record_answer(
    conn: AsyncConnection,
    dispute_id: str,
    *,
    outcome: str,
    correction_sealed: dict[str, Any] | None,
    answered_by: str,
    at: datetime,
) -> None:
    await conn.execute(
        update(bureau_disputes)
        .where(bureau_disputes.c.dispute_id == dispute_id)
        .values(
            outcome=outcome,
            correction_sealed=correction_sealed,
            answered_by=answered_by,
            answered_at=at,
        )
    )


async def record_answer_sent(conn: AsyncConnection, dispute_id: str, at: datetime) -> None:
    await conn.execute(
        update(bureau_disputes)
        .where(bureau_disputes.c.dispute_id == dispute_id)
        .values(answer_sent_at=at)
    )


async def answers_not_sent(conn: AsyncConnection) -> list[StoredDispute]:
    rows = await conn.execute(
        select(bureau_disputes)
        .where(bureau_disputes.c.outcome.is_not(None), bureau_disputes.c.answer_sent_at.is_(None))
        .order_by(bureau_disputes.c.dispute_id)
    )
    return [_dispute(r) for r in rows]


async def open_disputes(conn: AsyncConnection) -> list[StoredDispute]:
    rows = await conn.execute(
        select(bureau_disputes)
        .where(bureau_disputes.c.outcome.is_(None))
        .order_by(bureau_disputes.c.deadline, bureau_disputes.c.dispute_id)
    )
    return [_dispute(r) for r in rows]


async def disputes_of_accounts(
    conn: AsyncConnection, account_numbers: list[str]
) -> list[StoredDispute]:
    rows = await conn.execute(
        select(bureau_disputes)
        .where(bureau_disputes.c.account_number.in_(account_numbers))
        .order_by(bureau_disputes.c.received_at)
    )
    return [_dispute(r) for r in rows]


async def mark_reported(conn: AsyncConnection, dispute_ids: list[str], period: str) -> None:
    if dispute_ids:
        await conn.execute(
            update(bureau_disputes)
            .where(bureau_disputes.c.dispute_id.in_(dispute_ids))
            .values(reported_in=period)
        )


async def delete_reporting_of(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    lines = await conn.execute(
        delete(furnished_accounts).where(furnished_accounts.c.subject_id == subject_id)
    )
    disputes = await conn.execute(
        delete(bureau_disputes).where(bureau_disputes.c.subject_id == subject_id)
    )
    return {"furnished_accounts": lines.rowcount, "bureau_disputes": disputes.rowcount}
