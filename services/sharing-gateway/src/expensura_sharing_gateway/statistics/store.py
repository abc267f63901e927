"""Statistics in SQL: the disclosed rows a query counts, and the ledger of releases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_sharing_gateway.statistics.domain import Key, Release
from expensura_sharing_gateway.tables import disclosures, statistics_releases


async def disclosed(conn: AsyncConnection, columns: tuple[str, ...]) -> list[tuple[str, Key]]:
    """(subject id, the values of `columns`) for every disclosure made."""
    rows = await conn.execute(
        select(disclosures.c.subject_id, *(disclosures.c[c] for c in columns)).where(
            disclosures.c.outcome == "disclosed"
        )
    )
    return [(r.subject_id, tuple(str(getattr(r, c)) for c in columns)) for r in rows]


async def add_release(
    conn: AsyncConnection, release: Release, requested_by: str, at: datetime
) -> None:
    await conn.execute(
        statistics_releases.insert().values(
            release_id=release.release_id,
            query=release.query,
            parameters={"columns": list(release.columns)},
            k=release.k,
            cells=len(release.cells),
            suppressed=release.suppressed,
            requested_by=requested_by,
            released_at=at,
        )
    )


async def ledger(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(statistics_releases).order_by(statistics_releases.c.released_at)
    )
    return [dict(r._mapping) for r in rows]
