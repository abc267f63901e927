"""Loans' SQL for assessments: an application's decision, set once."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.tables import loan_applications


async def record_decision(
    conn: AsyncConnection, application_id: UUID, decision: str, assessed_at: datetime
) -> bool:
    """Set the application's decision, once: False if it already had one (another request
    assessed it first), and this one must not be recorded."""
    result = await conn.execute(
        update(loan_applications)
        .where(
            loan_applications.c.application_id == application_id,
            loan_applications.c.decision.is_(None),
        )
        .values(decision=decision, assessed_at=assessed_at)
    )
    return bool(result.rowcount)


async def decision_of(conn: AsyncConnection, application_id: UUID) -> str | None:
    found = await conn.execute(
        select(loan_applications.c.decision).where(
            loan_applications.c.application_id == application_id
        )
    )
    return found.scalar_one_or_none()
