"""What identity hands the sharing gateway for a disclosure, and only on a live decision.

The gateway already asked consent; identity asks again which decision this is and releases
nothing unless that decision allowed exactly this subject and recipient. The read is an
event whose actor is the partner that receives the data.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import httpx
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, StringConstraints

from expensura_events.contracts.decisions import DecisionOut
from expensura_events.envelope import Actor
from expensura_events.fields import Identifier
from expensura_events.vocabulary import ActorKind
from expensura_events.web.auth import Runtime
from expensura_events.web.problems import Problem
from expensura_identity.accounts import domain

router = APIRouter(prefix="/internal/subjects", tags=["internal"])
CONTACT_FIELDS = {"email": "pd:Contact", "phone": "pd:Contact"}
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]


class Values(BaseModel):
    subject_id: str
    values: dict[str, str | None]


class DecisionRefused(Problem):
    status, title = 403, "No decision allows this release"


class ConsentUnavailable(Problem):
    status, title = 503, "Consent service unavailable"


async def current_contact(rt: Runtime, conn: Any, subject_id: str) -> dict[str, str | None]:
    """The subject's latest e-mail and phone; None where there is none (or it was erased)."""
    found = domain.current_contact(await rt.store.read_subject(conn, subject_id))
    return {name: found[name].value if name in found else None for name in CONTACT_FIELDS}


@router.get("/{subject_id}/disclosable", responses={403: {}, 503: {}})
async def disclosable(
    subject_id: Annotated[Identifier, Path()],
    decision_id: UUID,
    recipient: Annotated[Identifier, Query()],
    rt: Runtime,
    fields: Annotated[list[FieldName], Query(max_length=10)],
) -> Values:
    wanted = [f for f in fields if f in CONTACT_FIELDS]
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.get(
                f"{rt.settings.service_urls['consent'].rstrip('/')}/internal/decisions/{decision_id}"
            )
    except httpx.HTTPError as exc:
        raise ConsentUnavailable(f"{exc!r}; nothing released.", retry_after=5) from None
    if resp.status_code != 200:
        raise DecisionRefused(f"Decision {decision_id} is unknown.")
    decision = DecisionOut.model_validate(resp.json())
    if (
        not decision.allowed
        or decision.subject_id != subject_id
        or (decision.recipient != recipient)
    ):
        raise DecisionRefused("The decision does not allow this subject and recipient.")
    async with rt.engine.begin() as conn:
        values = await current_contact(rt, conn, subject_id)
        await rt.record_access(
            conn,
            subject_id=subject_id,
            actor=Actor(kind=ActorKind.PARTNER, id=recipient),
            purpose=decision.purpose,
            fields=wanted,
            categories=[CONTACT_FIELDS[f] for f in wanted],
            case_reference=f"decision:{decision_id}",
            legal_basis=decision.basis.legal_basis(),
        )
    return Values(subject_id=subject_id, values={f: values[f] for f in wanted})
