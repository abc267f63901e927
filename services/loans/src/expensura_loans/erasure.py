"""What loans erases of its own state when a subject is erased. (Loan records under a legal
retention hold arrive with the loan lifecycle; they will be appended with retention_hold.)
The `verified-subjects` read model is purged by its projection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.applications import store


async def erase_loans_state(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    return {"loan_applications": await store.delete_applications_of(conn, subject_id)}
