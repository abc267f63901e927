"""What loans erases of its own state when a subject is erased: their applications, loans,
payments, and what the risk signals saw of them and their holds. The read models are purged
by their projections. What the law makes loans keep is in its log, under retention holds
(`retention/`): the erasure places them (`ServiceDefinition.place_holds`) and the retention
worker erases each when it ends."""

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
