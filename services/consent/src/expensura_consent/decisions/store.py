"""Recorded decisions in SQL: each is kept with what it rested on while it can be redeemed
or looked up by the caller that asked for it; after the retention it is deleted
(`decision_expiry`). The lasting record of a disclosure is the caller's event, which
carries the decision's id, time and basis."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.decisions.domain import Decision, Grant, ReleaseRefused
from expensura_consent.grounds import store as grounds
from expensura_consent.tables import decisions
from expensura_events.retention import Expiry
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
    fields: frozenset[str] | None = None,
) -> None:
    d = recorded.decision
    await conn.execute(
        _INSERT,
        {
            "decision_id": recorded.decision_id,
            "subject_id": recorded.subject_id,
            "purpose": recorded.purpose.value,
            "categories": sorted(categories),
            "recipient": recorded.recipient,
            "requester": requester,
            "allowed": d.allowed,
            "reason": d.reason,
            "consent_id": d.consent_id,
            "invocation_id": d.ground.invocation_id if d.ground else None,
            "decided_at": recorded.decided_at,
            "fields": None if fields is None else sorted(fields),
        },
    )


# Built once, the values bound per decision (see records/store.py `_RELIED_ON`).
_INSERT = t.insert()


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


async def grant_for_update(conn: AsyncConnection, decision_id: UUID) -> Grant | None:
    """The decision as a grant, locked until the transaction ends: two redemptions of one
    decision are serialised, so only one can release."""
    row = (
        await conn.execute(select(t).where(t.c.decision_id == decision_id).with_for_update())
    ).one_or_none()
    if row is None:
        return None
    return Grant(
        decision_id=row.decision_id,
        subject_id=row.subject_id,
        purpose=Purpose(row.purpose),
        recipient=row.recipient,
        categories=frozenset(row.categories),
        fields=None if row.fields is None else frozenset(row.fields),
        allowed=row.allowed,
        decided_at=row.decided_at,
        released_at=row.released_at,
    )


async def mark_released(conn: AsyncConnection, decision_id: UUID, at: datetime) -> None:
    """Compare-and-set: unused → released (the row is locked by grant_for_update)."""
    done = await conn.execute(
        update(t)
        .where(t.c.decision_id == decision_id, t.c.released_at.is_(None))
        .values(released_at=at)
    )
    if done.rowcount != 1:
        raise ReleaseRefused("the decision was already released once")


def decision_expiry(retention_seconds: int) -> Expiry:
    """Decisions made longer ago than the retention: a grant's redemption window
    (RELEASE_WITHIN_SECONDS) is long past, so `check_redemption` would refuse it anyway; a
    deleted one is refused as "no such decision" and answers 404 on look-up."""
    return Expiry(t, "decided_at", timedelta(seconds=retention_seconds))
