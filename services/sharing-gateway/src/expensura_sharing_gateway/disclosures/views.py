"""Disclosure to partners (SHR-1, SHR-2, SHR-3, USE-8), inbound data (COL-4), transparency,
over HTTP: parse, call the service, map its errors to problem+json. The rules are in
`domain.py`, the pipeline in `service.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from expensura_events.fields import FieldName, Identifier, ShortText, SingleLine
from expensura_events.vocabulary import CollectionChannel, DataCategory, Purpose
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.disclosures import service
from expensura_sharing_gateway.disclosures.domain import (
    DependencyDown,
    DisclosureAsk,
    InboundOffer,
    OutOfScope,
    Refused,
)
from expensura_sharing_gateway.web import CurrentPartner

router = APIRouter(tags=["disclosures"])


class DisclosureRequest(BaseModel):
    subject_id: Identifier
    purpose: Purpose
    fields: Annotated[list[FieldName], Field(min_length=1, max_length=20)]
    case_reference: Annotated[SingleLine, Field(max_length=200)] | None = None


class Disclosure(BaseModel):
    disclosure_id: UUID
    subject_id: str
    purpose: Purpose
    data: dict[str, str | None]
    decision_id: UUID
    basis: dict[str, Any]


class InboundRequest(BaseModel):
    subject_id: Identifier
    purpose: Purpose
    category: DataCategory
    value: Annotated[ShortText, Field(max_length=5000)]


class InboundAccepted(BaseModel):
    accepted: bool
    channel: CollectionChannel


class MyDisclosure(BaseModel):
    disclosure_id: UUID
    partner_id: str
    purpose: str
    fields: list[str]
    outcome: str
    reason: str
    ground: str | None
    case_reference: str | None
    at: datetime


class RefusedProblem(Problem):
    status, title = 403, "Disclosure refused"


class OutOfScopeProblem(Problem):
    status, title = 403, "Purpose not in this token's scope"


class Unavailable(Problem):
    status, title = 503, "A dependency is unavailable"


@router.post("/v1/disclosures", responses={403: {}, 409: {}, 503: {}})
async def disclose(body: DisclosureRequest, who: CurrentPartner, rt: Runtime) -> Disclosure:
    """Ask for a subject's data for a purpose. You get only the fields your kind, the purpose
    and your agreement allow, and only on a consent or a legal ground; every answer, yes or
    no, is recorded."""
    ask = DisclosureAsk(
        subject_id=body.subject_id,
        purpose=body.purpose,
        fields=tuple(body.fields),
        case_reference=body.case_reference,
    )
    try:
        made = await service.disclose(rt, who, ask)
    except OutOfScope as exc:
        raise OutOfScopeProblem(str(exc)) from None
    except Refused as exc:
        raise RefusedProblem(exc.reason, disclosure_id=str(exc.disclosure_id)) from None
    except DependencyDown as exc:
        raise Unavailable(f"{exc}; nothing was disclosed.", retry_after=5) from None
    return Disclosure(
        disclosure_id=made.disclosure_id,
        subject_id=made.subject_id,
        purpose=made.purpose,
        data=made.data,
        decision_id=made.decision_id,
        basis=made.basis,
    )


@router.post("/v1/inbound", responses={403: {}, 409: {}, 503: {}})
async def inbound(body: InboundRequest, who: CurrentPartner, rt: Runtime) -> InboundAccepted:
    """Data a partner offers about a subject (COL-4): accepted only with the subject's consent
    naming this partner and an agreement covering inbound data for the purpose."""
    offer = InboundOffer(
        subject_id=body.subject_id, purpose=body.purpose, category=body.category, value=body.value
    )
    try:
        await service.accept_inbound(rt, who, offer)
    except OutOfScope as exc:
        raise OutOfScopeProblem(str(exc)) from None
    except Refused as exc:
        raise RefusedProblem(exc.reason) from None
    except DependencyDown as exc:
        raise Unavailable(f"{exc}; nothing was stored.", retry_after=5) from None
    return InboundAccepted(accepted=True, channel=CollectionChannel.FROM_PARTNER_WITH_CONSENT)


@router.get("/v1/me/disclosures")
async def my_disclosures(caller: CurrentUser, rt: Runtime) -> list[MyDisclosure]:
    """Every disclosure of your data and every refused request: to whom, when, why, on what
    ground."""
    return [
        MyDisclosure(
            disclosure_id=r.disclosure_id,
            partner_id=r.partner_id,
            purpose=r.purpose,
            fields=r.fields,
            outcome=r.outcome,
            reason=r.reason,
            ground=r.ground,
            case_reference=r.case_reference,
            at=r.at,
        )
        for r in await service.disclosures_of(rt, caller.id)
    ]
