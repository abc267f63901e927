"""Incident's SQL for incidents raised automatically (SEC-4): the occurrences seen, and the
open incident of a dedupe key."""

from __future__ import annotations

import zlib
from datetime import datetime
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_incident.alerts.domain import Cause
from expensura_incident.response.domain import IncidentState
from expensura_incident.tables import auto_raised_causes as causes
from expensura_incident.tables import incidents


async def lock_key(conn: AsyncConnection, key: str) -> None:
    """One decision per dedupe key at a time (the projection and the internal route, two
    replicas): the second waits, then finds the first one's incident open."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(b"alert:" + key.encode())}
    )


async def seen_in(conn: AsyncConnection, occurrence: str) -> UUID | None:
    """The incident an occurrence went to, if it was seen before."""
    found = await conn.execute(
        select(causes.c.incident_id).where(causes.c.occurrence == occurrence)
    )
    return found.scalar_one_or_none()


async def open_incident(conn: AsyncConnection, key: str) -> UUID | None:
    """The key's latest incident, if it is not closed."""
    found = await conn.execute(
        select(incidents.c.incident_id)
        .select_from(causes.join(incidents, causes.c.incident_id == incidents.c.incident_id))
        .where(causes.c.dedupe_key == key, incidents.c.state != IncidentState.CLOSED.value)
        .order_by(causes.c.at.desc())
        .limit(1)
    )
    return found.scalar_one_or_none()


async def record(
    conn: AsyncConnection, cause: Cause, incident_id: UUID, *, raised: bool, at: datetime
) -> None:
    await conn.execute(
        causes.insert().values(
            occurrence=cause.occurrence,
            dedupe_key=cause.key,
            source=cause.source.value,
            incident_id=incident_id,
            raised=raised,
            at=at,
        )
    )


async def occurrences(conn: AsyncConnection, incident_id: UUID) -> int:
    """How many occurrences went to an incident (the one that raised it included)."""
    found = await conn.execute(
        select(text("count(*)")).select_from(causes).where(causes.c.incident_id == incident_id)
    )
    return int(found.scalar_one())
