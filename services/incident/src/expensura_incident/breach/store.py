"""Breach notices in SQL: the link of each breach notice to its incident, the per-state
counts over the notices' rows, and the public notices."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_incident.breach.domain import (
    PublicNotice,
    PublicNoticeDecision,
    SubstituteNoticeRule,
)
from expensura_incident.tables import breach_notices as b
from expensura_incident.tables import customer_notices as n
from expensura_incident.tables import public_notices as p


async def link(
    conn: AsyncConnection, notice_id: UUID, incident_id: UUID, language: str, at: datetime
) -> bool:
    """Link a notice to its incident; False if it already was (planned by an earlier run)."""
    inserted = await conn.execute(
        insert(b)
        .values(notice_id=notice_id, incident_id=incident_id, language=language, planned_at=at)
        .on_conflict_do_nothing(index_elements=["notice_id"])
        .returning(b.c.notice_id)
    )
    return inserted.first() is not None


async def known(conn: AsyncConnection, notice_ids: list[UUID]) -> set[UUID]:
    """Those of `notice_ids` already linked to an incident."""
    if not notice_ids:
        return set()
    rows = await conn.execute(select(b.c.notice_id).where(b.c.notice_id.in_(notice_ids)))
    return {r.notice_id for r in rows}


async def counts(conn: AsyncConnection, incident_id: UUID) -> dict[str, int]:
    """The incident's breach notices by delivery state; `erased`: the subject was erased
    since (the notice's row is gone with them)."""
    rows = await conn.execute(
        select(n.c.state, func.count())
        .select_from(b.outerjoin(n, n.c.notice_id == b.c.notice_id))
        .where(b.c.incident_id == incident_id)
        .group_by(n.c.state)
    )
    return {(state if state is not None else "erased"): count for state, count in rows}


async def channel_counts(
    conn: AsyncConnection, incident_id: UUID
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """The incident's breach notices by their current (or last) channel (`none`: no channel
    could reach the subject) and delivery state; and per channel, those on it because an
    earlier channel gave up (the fall-backs)."""
    rows = await conn.execute(
        select(
            n.c.channel,
            n.c.state,
            func.count(),
            func.count().filter(func.jsonb_array_length(n.c.exhausted_channels) > 0),
        )
        .select_from(b.join(n, n.c.notice_id == b.c.notice_id))
        .where(b.c.incident_id == incident_id)
        .group_by(n.c.channel, n.c.state)
    )
    by_channel: dict[str, dict[str, int]] = {}
    fallbacks: dict[str, int] = {}
    for channel, state, count, fell_back in rows:
        name = channel or "none"
        by_channel.setdefault(name, {})[state] = count
        if fell_back:
            fallbacks[name] = fallbacks.get(name, 0) + fell_back
    return by_channel, fallbacks


async def publish(
    conn: AsyncConnection,
    notice: PublicNotice,
    public_notice_id: UUID,
    decision: PublicNoticeDecision,
    rule: SubstituteNoticeRule,
    *,
    subjects: int,
    unreachable: int,
    at: datetime,
) -> bool:
    """Record the incident's public notice; False if it already has one."""
    inserted = await conn.execute(
        insert(p)
        .values(
            incident_id=notice.incident_id,
            public_notice_id=public_notice_id,
            title=notice.title,
            body=notice.body,
            reasons=list(decision.reasons),
            subjects=subjects,
            unreachable=unreachable,
            substitute=decision.substitute,
            source=rule.source,
            published_at=at,
        )
        .on_conflict_do_nothing(index_elements=["incident_id"])
        .returning(p.c.incident_id)
    )
    return inserted.first() is not None


async def published(conn: AsyncConnection, limit: int = 100) -> list[dict[str, Any]]:
    """The public notices, newest first."""
    rows = await conn.execute(select(p).order_by(p.c.published_at.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
