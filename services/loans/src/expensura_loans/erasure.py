"""What loans erases of its own state when a subject is erased: their applications, loans,
payments, and what the risk signals saw of them and their holds. (Records under a legal
retention hold arrive with the retention wiring: the schedule is `retention/domain.py`.)
The read models are purged by their projections."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.applications import store
from expensura_loans.reporting import store as reporting_store
from expensura_loans.risk import store as risk_store
from expensura_loans.servicing import store as servicing_store


async def erase_loans_state(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    return {
        "loan_applications": await store.delete_applications_of(conn, subject_id),
        **await reporting_store.delete_reporting_of(conn, subject_id),
        **await risk_store.delete_risk_state_of(conn, subject_id),
        **await servicing_store.delete_loans_of(conn, subject_id),
    }
