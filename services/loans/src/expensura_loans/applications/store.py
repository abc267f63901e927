"""Loans' SQL for applications: rows <-> domain records, and the verification read model.
An amount is stored sealed; opening it is the service's (it holds the keys)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.applications.domain import LoanApplication
from expensura_loans.tables import loan_applications, proven_emails, verified_subjects


@dataclass(frozen=True)
class StoredApplication:
    """A row as stored: the amount sealed (or, from before sealing, plaintext)."""

    application_id: UUID
    subject_id: str
    amount_sealed: dict[str, Any] | None
    legacy_amount_cents: int | None
    term_months: int
    received_at: datetime
    facts_sealed: dict[str, Any] | None = None  # purpose and stated income
    decision: str | None = None
    assessed_at: datetime | None = None


def _stored(row: Any) -> StoredApplication:
    return StoredApplication(
        application_id=row.application_id,
        subject_id=row.subject_id,
        amount_sealed=row.amount_sealed,
        legacy_amount_cents=row.amount_cents,
        term_months=row.term_months,
        received_at=row.received_at,
        facts_sealed=row.facts_sealed,
        decision=row.decision,
        assessed_at=row.assessed_at,
    )


async def is_verified(conn: AsyncConnection, subject_id: str) -> bool:
    found = await conn.execute(
        select(verified_subjects.c.subject_id).where(verified_subjects.c.subject_id == subject_id)
    )
    return found.first() is not None


async def record_verified(
    conn: AsyncConnection, subject_id: str, request_id: UUID, verified_at: datetime
) -> None:
    """Idempotent: a subject verified twice stays verified from the first time."""
    await conn.execute(
        insert(verified_subjects)
        .values(subject_id=subject_id, request_id=request_id, verified_at=verified_at)
        .on_conflict_do_nothing()
    )


async def is_email_proven(conn: AsyncConnection, subject_id: str) -> bool:
    found = await conn.execute(
        select(proven_emails.c.subject_id).where(proven_emails.c.subject_id == subject_id)
    )
    return found.first() is not None


async def record_email_proven(conn: AsyncConnection, subject_id: str, proven_at: datetime) -> None:
    """Idempotent: the first proof stands."""
    await conn.execute(
        insert(proven_emails)
        .values(subject_id=subject_id, proven_at=proven_at)
        .on_conflict_do_nothing()
    )


async def add_application(
    conn: AsyncConnection,
    application: LoanApplication,
    amount_sealed: dict[str, Any],
    facts_sealed: dict[str, Any],
) -> None:
    await conn.execute(
        loan_applications.insert().values(
            application_id=application.application_id,
            subject_id=application.subject_id,
            amount_sealed=amount_sealed,
            facts_sealed=facts_sealed,
            term_months=application.terms.term_months,
            received_at=application.received_at,
        )
    )


async def application(conn: AsyncConnection, application_id: UUID) -> StoredApplication | None:
    row = (
        await conn.execute(
            select(loan_applications).where(loan_applications.c.application_id == application_id)
        )
    ).first()
    return None if row is None else _stored(row)


async def applications_of(conn: AsyncConnection, subject_id: str) -> list[StoredApplication]:
    rows = await conn.execute(
        select(loan_applications)
        .where(loan_applications.c.subject_id == subject_id)
        .order_by(loan_applications.c.received_at)
    )
    return [_stored(r) for r in rows]


async def with_plaintext_amounts(conn: AsyncConnection, limit: int) -> list[StoredApplication]:
    """Rows from before sealing (locked, skipping rows another process is sealing)."""
    rows = await conn.execute(
        select(loan_applications)
        .where(loan_applications.c.amount_cents.is_not(None))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_stored(r) for r in rows]


async def replace_amount(
    conn: AsyncConnection, application_id: UUID, amount_sealed: dict[str, Any]
) -> None:
    await conn.execute(
        update(loan_applications)
        .where(loan_applications.c.application_id == application_id)
        .values(amount_sealed=amount_sealed, amount_cents=None)
    )


async def delete_applications_of(conn: AsyncConnection, subject_id: str) -> int:
    result = await conn.execute(
        delete(loan_applications).where(loan_applications.c.subject_id == subject_id)
    )
    return result.rowcount
