"""Recorded decisions in SQL: a caller's event names a decision by its id, so each is kept
with what it rested on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.decisions.domain import Decision
from expensura_consent.grounds import store as grounds
from expensura_consent.tables import decisions
from expensura_events.vocabulary import Purpose

t = decisions


@dataclass(frozen=True)
class RecordedDecision:
    decision_id: UUID
    subject_id: str
    purpose: Purpose
    recipient: str | None
    decided_at: datetime
    decision: Decision


async def insert(
    conn: AsyncConnection,
    recorded: RecordedDecision,
    categories: set[str],
    requester: str,
) -> None:
    d = recorded.decision
    await conn.execute(
        t.insert().values(
            decision_id=recorded.decision_id,
            subject_id=recorded.subject_id,
            purpose=recorded.purpose.value,
            categories=sorted(categories),
            recipient=recorded.recipient,
            requester=requester,
            allowed=d.allowed,
            reason=d.reason,
            consent_id=d.consent_id,
            invocation_id=d.ground.invocation_id if d.ground else None,
            decided_at=recorded.decided_at,
        )
    )


async def get(conn: AsyncConnection, decision_id: UUID) -> RecordedDecision | None:
    """The decision, with the ground it rested on as it is now (revoked or not)."""
    row = (await conn.execute(select(t).where(t.c.decision_id == decision_id))).one_or_none()
    if row is None:
        return None
    ground = None
    if row.invocation_id is not None:
        ground = await grounds.get(conn, row.invocation_id)
    return RecordedDecision(
        decision_id=row.decision_id,
        subject_id=row.subject_id,
        purpose=Purpose(row.purpose),
        recipient=row.recipient,
        decided_at=row.decided_at,
        decision=Decision(row.allowed, row.reason, consent_id=row.consent_id, ground=ground),
    )
