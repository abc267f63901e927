"""Stopping processing (RUL-2): the restriction states and the one rule that reads them.

A subject whose account is cancelled is first `processing-stopped`, then `erased`. From the
first, a service may still use their data only for what the law requires of it (legal
compliance) and for security; nothing else. Each service keeps the states in its own
`subject_restrictions` table, written by identity's rights worker and by the
`subject-lifecycle` projection, and checked on every append and every consent decision.
The states and the rule are in `restriction_rules` (pure) and re-exported here.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import utcnow
from expensura_events.obligations import enforces
from expensura_events.privacy.restriction_rules import (
    ALLOWED_AFTER_STOP,
    ProcessingRestricted,
    Restriction,
    ensure_permitted,
    permits,
)
from expensura_events.tables import subject_restrictions
from expensura_events.vocabulary import Purpose

__all__ = [
    "ALLOWED_AFTER_STOP",
    "ProcessingRestricted",
    "Restriction",
    "check_allowed",
    "ensure_permitted",
    "permits",
    "restrict",
    "restriction",
]


async def restriction(conn: AsyncConnection, subject_id: str) -> Restriction | None:
    """The subject's restriction in this service, or None."""
    state = (
        await conn.execute(
            select(subject_restrictions.c.state).where(
                subject_restrictions.c.subject_id == subject_id
            )
        )
    ).scalar_one_or_none()
    return None if state is None else Restriction(state)


@enforces("RUL-2")
async def check_allowed(conn: AsyncConnection, subject_id: str, purpose: Purpose) -> None:
    if purpose in ALLOWED_AFTER_STOP:
        return  # allowed whatever the state: no need to read it
    ensure_permitted(subject_id, await restriction(conn, subject_id), purpose)


async def restrict(
    conn: AsyncConnection, subject_id: str, state: Restriction, request_id: UUID
) -> None:
    stmt = insert(subject_restrictions).values(
        subject_id=subject_id, state=state.value, request_id=request_id, since=utcnow()
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["subject_id"],
            set_={"state": stmt.excluded.state, "request_id": stmt.excluded.request_id},
        )
    )
