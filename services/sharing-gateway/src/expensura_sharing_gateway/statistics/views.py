"""Statistics releases and their ledger (RUL-3) over HTTP: parse, call the service, map its
errors to problem+json."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from expensura_events.auth import Principal
from expensura_events.envelope import Actor
from expensura_events.vocabulary import StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.statistics import service
from expensura_sharing_gateway.statistics.domain import K_FLOOR, K_MAX, BelowFloor, UnknownQuery

router = APIRouter(tags=["statistics"])
# An aggregate leaves the company: privacy officers only, never administrators (SEC-2).
Officer = Annotated[Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER))]


class ReleaseRequest(BaseModel):
    query: Annotated[
        str, Field(pattern="^(disclosures-by-purpose|disclosures-by-partner-and-purpose)$")
    ]
    # never below the policy's floor: refused here (422) and again by the domain
    k: Annotated[int, Field(ge=K_FLOOR, le=K_MAX)] = K_FLOOR


class Cell(BaseModel):
    group: dict[str, str]
    count: int | None  # None: suppressed, fewer than k behind it


class Release(BaseModel):
    release_id: UUID
    query: str
    k: int
    cells: list[Cell]
    suppressed: int


class Invalid(Problem):
    status, title = 422, "Invalid request"


@router.post("/v1/statistics/releases", status_code=201)
async def release(body: ReleaseRequest, who: Officer, rt: Runtime) -> Release:
    try:
        made = await service.release_statistics(
            rt, body.query, body.k, Actor(kind=who.kind, id=who.id)
        )
    except (BelowFloor, UnknownQuery) as exc:
        raise Invalid(str(exc)) from None
    return Release(
        release_id=made.release_id,
        query=made.query,
        k=made.k,
        suppressed=made.suppressed,
        cells=[
            Cell(group=dict(zip(made.columns, key, strict=True)), count=n)
            for key, n in sorted(made.cells.items())
        ],
    )


@router.get("/v1/statistics/releases")
async def ledger(who: Officer, rt: Runtime) -> list[dict[str, object]]:
    """The ledger: every release, its query, parameters and threshold."""
    return await service.ledger(rt)
