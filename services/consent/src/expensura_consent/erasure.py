"""What consent erases of its own state when a subject is erased.

Consent records, decisions and policy answers name only ids and purposes, but they describe
the person's choices, so they go. Legal-ground invocations stay: they document processing
the law required (a court order, an investigation) and are kept under that legal basis.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.tables import (
    consent_records,
    decisions,
    policy_notifications,
    policy_responses,
)


async def erase_consent_state(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    purged = {}
    for table in (consent_records, decisions, policy_notifications, policy_responses):
        result = await conn.execute(delete(table).where(table.c.subject_id == subject_id))
        purged[table.name] = result.rowcount
    return purged
