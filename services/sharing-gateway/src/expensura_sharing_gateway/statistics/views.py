"""Statistics for the public and third parties (RUL-3): aggregates only, small cells
suppressed (k-anonymity threshold, 10 by default), every release in a ledger."""

from __future__ import annotations

from collections import Counter
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select

from expensura_events.auth import Principal
from expensura_events.catalog.sharing import StatisticsReleased
from expensura_events.envelope import Actor, utcnow
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_sharing_gateway.tables import disclosures, statistics_releases

router = APIRouter(tags=["statistics"])
Officer = Annotated[
    Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER, StaffRole.ADMINISTRATOR))
]
QUERIES = {
    "disclosures-by-purpose": ("purpose",),
    "disclosures-by-partner-and-purpose": ("partner_id", "purpose"),
}


class ReleaseRequest(BaseModel):
    query: Annotated[
        str, Field(pattern="^(disclosures-by-purpose|disclosures-by-partner-and-purpose)$")
    ]
    k: Annotated[int, Field(ge=10, le=1000)] = 10  # never below the policy's floor


class Cell(BaseModel):
    group: dict[str, str]
    count: int | None  # None: suppressed, fewer than k behind it


class Release(BaseModel):
    release_id: UUID
    query: str
    k: int
    cells: list[Cell]
    suppressed: int


def suppress(
    counts: Counter[tuple[str, ...]], k: int
) -> tuple[dict[tuple[str, ...], int | None], int]:
    """Cells with fewer than k individuals are withheld."""
    out: dict[tuple[str, ...], int | None] = {}
    hidden = 0
    for key, n in counts.items():
        if n < k:
            out[key], hidden = None, hidden + 1
        else:
            out[key] = n
    return out, hidden


@router.post("/v1/statistics/releases", status_code=201)
async def release(body: ReleaseRequest, who: Officer, rt: Runtime) -> Release:
    columns = QUERIES[body.query]
    async with rt.engine.begin() as conn:
        rows = (
            await conn.execute(
                select(disclosures.c.subject_id, *(disclosures.c[c] for c in columns)).where(
                    disclosures.c.outcome == "disclosed"
                )
            )
        ).all()
        # count distinct people per cell, not disclosures: k protects individuals
        people: dict[tuple[str, ...], set[str]] = {}
        for row in rows:
            people.setdefault(tuple(str(getattr(row, c)) for c in columns), set()).add(
                row.subject_id
            )
        counts = Counter({key: len(s) for key, s in people.items()})
        cells, hidden = suppress(counts, body.k)
        release_id = uuid4()
        await conn.execute(
            statistics_releases.insert().values(
                release_id=release_id,
                query=body.query,
                parameters={"columns": list(columns)},
                k=body.k,
                cells=len(cells),
                suppressed=hidden,
                requested_by=who.id,
                released_at=utcnow(),
            )
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    StatisticsReleased(
                        release_id=release_id,
                        query=body.query,
                        parameters={"columns": list(columns)},
                        k=body.k,
                        cells=len(cells),
                        suppressed=hidden,
                    ),
                    stream_id=f"statistics-{release_id}",
                    subject_id=None,
                    actor=Actor(kind=who.kind, id=who.id),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                )
            ],
        )
    return Release(
        release_id=release_id,
        query=body.query,
        k=body.k,
        suppressed=hidden,
        cells=[
            Cell(group=dict(zip(columns, key, strict=True)), count=n)
            for key, n in sorted(cells.items())
        ],
    )


@router.get("/v1/statistics/releases")
async def ledger(who: Officer, rt: Runtime) -> list[dict[str, object]]:
    """The ledger: every release, its query, parameters and threshold."""
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(statistics_releases).order_by(statistics_releases.c.released_at)
        )
        return [dict(r._mapping) for r in rows]
