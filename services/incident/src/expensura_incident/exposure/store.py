"""SQL of the blast radius: the exposure index and the results. No rules here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_exposure import ScopeKind
from expensura_incident.exposure.domain import PARTNER, SERVICE, STAFF, Group, IndexRow, Scope
from expensura_incident.tables import blast_radius_results, exposure_index

ix = exposure_index.c


async def add_rows(conn: AsyncConnection, rows: Sequence[IndexRow]) -> None:
    if not rows:
        return
    await conn.execute(
        insert(exposure_index),
        [
            {
                "at": r.at,
                "actor_kind": r.actor_kind,
                "actor": r.actor,
                "credential": r.credential,
                "subject_id": r.subject_id,
                "category": r.category,
                "field": r.field,
                "sealed_by": r.sealed_by,
                "source": r.source,
                "event_id": uuid.UUID(r.event_id),
            }
            for r in rows
        ],
    )


def in_scope(scope: Scope) -> ColumnElement[bool]:
    """The scope and its window, as the leading columns of one of the index's indexes."""
    by_actor = {ScopeKind.PARTNER: PARTNER, ScopeKind.STAFF: STAFF, ScopeKind.SERVICE: SERVICE}
    if scope.kind in by_actor:
        match = and_(ix.actor_kind == by_actor[scope.kind], ix.actor == scope.value)
    elif scope.kind is ScopeKind.CREDENTIAL:
        match = ix.credential == scope.value
    elif scope.kind is ScopeKind.SUBJECT:
        match = ix.subject_id == scope.value
    else:
        match = ix.category == scope.value
    return and_(match, ix.at >= scope.start, ix.at < scope.end)


def groups_query(scope: Scope) -> Any:
    return (
        select(
            ix.subject_id,
            ix.category,
            ix.field,
            ix.sealed_by,
            func.min(ix.at).label("first_at"),
            func.max(ix.at).label("last_at"),
        )
        .where(in_scope(scope))
        .group_by(ix.subject_id, ix.category, ix.field, ix.sealed_by)
    )


async def groups(conn: AsyncConnection, scope: Scope) -> list[Group]:
    """Each subject's fields in scope, per sealing, with the first and last read."""
    rows = await conn.execute(groups_query(scope))
    return [
        Group(r.subject_id, r.category, r.field, r.sealed_by, r.first_at, r.last_at) for r in rows
    ]


async def sources(conn: AsyncConnection, scope: Scope) -> dict[str, int]:
    """The logs the scope's rows came from, with their rows."""
    rows = await conn.execute(
        select(ix.source, func.count()).where(in_scope(scope)).group_by(ix.source)
    )
    return {r[0]: r[1] for r in rows}


async def add_result(
    conn: AsyncConnection,
    *,
    computation_id: uuid.UUID,
    incident_id: uuid.UUID,
    scope: Scope,
    scope_value: str | None,
    subjects: int,
    notifiable_subjects: int,
    summary: dict[str, Any],
    sealed: bytes,
    subjects_digest: str,
    computed_by: str,
    computed_at: datetime,
) -> None:
    await conn.execute(
        insert(blast_radius_results).values(
            computation_id=computation_id,
            incident_id=incident_id,
            scope_kind=scope.kind.value,
            scope_value=scope_value,
            window_start=scope.start,
            window_end=scope.end,
            subjects=subjects,
            notifiable_subjects=notifiable_subjects,
            summary=summary,
            sealed=sealed,
            subjects_digest=subjects_digest,
            computed_by=computed_by,
            computed_at=computed_at,
        )
    )


async def result(conn: AsyncConnection, computation_id: uuid.UUID) -> Any:
    return (
        await conn.execute(
            select(blast_radius_results).where(
                blast_radius_results.c.computation_id == computation_id
            )
        )
    ).one_or_none()
