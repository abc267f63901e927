"""Loans' SQL for applications: rows <-> domain records, and the verification read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.applications.domain import ApplicationStatus, LoanApplication, LoanTerms
from expensura_loans.tables import loan_applications, verified_subjects


def to_application(row: Any) -> LoanApplication:
    return LoanApplication(
        application_id=row.application_id,
        subject_id=row.subject_id,
        terms=LoanTerms(amount_cents=row.amount_cents, term_months=row.term_months),
        received_at=row.received_at,
        status=ApplicationStatus.RECEIVED,
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


async def add_application(conn: AsyncConnection, application: LoanApplication) -> None:
    await conn.execute(
        loan_applications.insert().values(
            application_id=application.application_id,
            subject_id=application.subject_id,
            amount_cents=application.terms.amount_cents,
            term_months=application.terms.term_months,
            received_at=application.received_at,
        )
    )


async def applications_of(conn: AsyncConnection, subject_id: str) -> list[LoanApplication]:
    rows = await conn.execute(
        select(loan_applications)
        .where(loan_applications.c.subject_id == subject_id)
        .order_by(loan_applications.c.received_at)
    )
    return [to_application(r) for r in rows]


async def delete_applications_of(conn: AsyncConnection, subject_id: str) -> int:
    result = await conn.execute(
        delete(loan_applications).where(loan_applications.c.subject_id == subject_id)
    )
    return result.rowcount
