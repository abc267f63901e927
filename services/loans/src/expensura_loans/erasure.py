"""What loans erases of its own state when a subject is erased. (Loan records under a legal
retention hold arrive with the loan lifecycle; they will be appended with retention_hold.)"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.applications.projection import loan_applications


async def erase_loans_state(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    result = await conn.execute(
        delete(loan_applications).where(loan_applications.c.subject_id == subject_id)
    )
    return {"loan_applications": result.rowcount}
