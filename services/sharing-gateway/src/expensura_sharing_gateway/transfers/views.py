"""Transfers to a successor (TRF-1) and public disclosure (PUB-1) over HTTP: parse, call the
service, map its errors to problem+json."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from expensura_events.auth import Principal
from expensura_events.envelope import Actor
from expensura_events.fields import FieldName, Identifier, SingleLine
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.disclosures.domain import DependencyDown
from expensura_sharing_gateway.transfers import service
from expensura_sharing_gateway.transfers.domain import (
    MissingEvidence,
    PublicRefused,
    SuccessorTransfer,
    TransferReason,
    check_evidence,
)

router = APIRouter(tags=["transfers and public disclosure"])
# Both release personal data: privacy officers only, never administrators (SEC-2).
Officer = Annotated[Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER))]


class TransferRequest(BaseModel):
    successor: Annotated[SingleLine, Field(max_length=200)]
    reason: Annotated[str, Field(pattern="^(merger|acquisition|asset-transfer|bankruptcy)$")]
    commitment_reference: Annotated[SingleLine, Field(max_length=500)] | None = None
    reconsent: bool = False

    @model_validator(mode="after")
    def evidence(self) -> TransferRequest:
        # the domain's rule, checked at the edge too so that the answer is a 422
        check_evidence(self.commitment_reference, self.reconsent)
        return self


class Transfer(BaseModel):
    transfer_id: UUID
    reconsent_required: bool


class PublicRequest(BaseModel):
    subject_id: Identifier
    fields: Annotated[list[FieldName], Field(min_length=1, max_length=10)]
    purpose: Purpose
    case_reference: Annotated[SingleLine, Field(min_length=1, max_length=200)]


class PublicDisclosure(BaseModel):
    disclosure_id: UUID
    decision_id: UUID
    basis: dict[str, Any]
    data: dict[str, str | None]


class RefusedProblem(Problem):
    status, title = 403, "Public disclosure refused"


class Unavailable(Problem):
    status, title = 503, "A dependency is unavailable"


class Invalid(Problem):
    status, title = 422, "Invalid request"


@router.post("/v1/transfers", status_code=201)
async def record_transfer(body: TransferRequest, who: Officer, rt: Runtime) -> Transfer:
    """A merger or acquisition: the successor is bound by this policy (its commitment is the
    evidence), or every user is asked for consent again before anything moves."""
    transfer = SuccessorTransfer(
        successor=body.successor,
        reason=TransferReason(body.reason),
        commitment_reference=body.commitment_reference,
        reconsent=body.reconsent,
    )
    try:
        recorded = await service.record_transfer(rt, transfer, Actor(kind=who.kind, id=who.id))
    except MissingEvidence as exc:  # the request model already refuses it; kept for safety
        raise Invalid(str(exc)) from None
    return Transfer(
        transfer_id=recorded.transfer_id, reconsent_required=recorded.reconsent_required
    )


@router.post("/v1/public-disclosures", status_code=201, responses={403: {}, 503: {}})
async def public_disclosure(body: PublicRequest, who: Officer, rt: Runtime) -> PublicDisclosure:
    """Make a subject's data public, for a case (`case_reference`), only on the subject's
    explicit consent for this request (a consent naming the recipient `public`) or a legal
    mandate (a legal ground naming `public`, in effect only once a second privacy officer
    approved it)."""
    try:
        made = await service.disclose_publicly(
            rt,
            body.subject_id,
            body.fields,
            body.purpose,
            body.case_reference,
            Actor(kind=who.kind, id=who.id),
        )
    except PublicRefused as exc:
        raise RefusedProblem(str(exc)) from None
    except DependencyDown as exc:
        raise Unavailable(f"{exc}; nothing was disclosed.", retry_after=5) from None
    return PublicDisclosure(
        disclosure_id=made.disclosure_id,
        decision_id=made.decision_id,
        basis=made.basis,
        data=made.data,
    )
