"""The purpose taxonomy, published for apps, partners and auditors. It is pure data (no
store, no use case): the view reads the domain's history directly."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from expensura_consent.purposes import domain as taxonomy

router = APIRouter(tags=["purposes"])


class PurposeVersionOut(BaseModel):
    purpose: str
    version: int
    current: bool
    policy_reference: str
    dpv: list[str]
    categories: list[str]
    max_grade: str
    discloses: bool
    description: str


@router.get("/v1/purposes")
async def purposes() -> list[PurposeVersionOut]:
    """Every purpose and every version of it; consent to version n covers only version n's
    categories, so a wider version needs fresh consent (RUL-4)."""
    return [
        PurposeVersionOut(
            purpose=v.purpose.value,
            version=v.version,
            current=v is history[-1],
            policy_reference=v.policy_ref,
            dpv=list(v.dpv),
            categories=sorted(c.value for c in v.categories),
            max_grade=v.max_grade.value,
            discloses=v.discloses,
            description=v.purpose.info.description,
        )
        for history in taxonomy.HISTORY.values()
        for v in history
    ]
