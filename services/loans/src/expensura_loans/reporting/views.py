"""Bureau disputes over HTTP, for the privacy officer who investigates those that loans'
records cannot settle (staff with MFA; identity has no investigator role, and answering a
dispute is the FCRA compliance the privacy officer's legal-compliance purpose covers)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from expensura_events.auth import Principal
from expensura_events.envelope import Actor
from expensura_events.vocabulary import StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Conflict, NotFound, Problem
from expensura_loans.applications.domain import MAX_AMOUNT_CENTS
from expensura_loans.reporting.domain import (
    CORRECTABLE_STATUSES,
    Correction,
    DisputeOutcome,
    InvalidCorrection,
    ReportedStatus,
)
from expensura_loans.reporting.service import (
    AlreadyAnswered,
    DisputeView,
    UnknownDispute,
    answer_dispute,
    open_disputes,
)

router = APIRouter(tags=["credit reporting"])

INVESTIGATOR = StaffRole.PRIVACY_OFFICER
Investigator = Annotated[Principal, Depends(staff_with(INVESTIGATOR))]
_MAX_CENTS = 2 * MAX_AMOUNT_CENTS


class DisputeOut(BaseModel):
    dispute_id: str
    account_number: str
    received_at: datetime
    deadline: datetime
    overdue: bool
    records_agree: bool | None
    outcome: str | None
    answered_at: datetime | None


class DisputesOut(BaseModel):
    disputes: list[DisputeOut]


class CorrectionIn(BaseModel):
    status: ReportedStatus
    current_balance_cents: Annotated[int, Field(ge=0, le=_MAX_CENTS)]
    amount_past_due_cents: Annotated[int, Field(ge=0, le=_MAX_CENTS)]
    date_of_first_delinquency: date | None = None


class AnswerIn(BaseModel):
    outcome: DisputeOutcome
    correction: CorrectionIn | None = None


class InvalidCorrectionProblem(Problem):
    status, title = 422, "Invalid correction"


def _out(view: DisputeView) -> DisputeOut:
    return DisputeOut(**view.__dict__)


@router.get("/v1/bureau-disputes")
async def disputes_open(officer: Investigator, rt: Runtime) -> DisputesOut:
    """Disputes waiting for an answer, the nearest deadline first (`overdue` past it)."""
    return DisputesOut(disputes=[_out(v) for v in await open_disputes(rt)])


@router.post("/v1/bureau-disputes/{dispute_id}/answer", responses={404: {}, 409: {}, 422: {}})
async def answer(
    dispute_id: Annotated[str, Path(min_length=1, max_length=200)],
    body: AnswerIn,
    officer: Investigator,
    rt: Runtime,
) -> DisputeOut:
    """Answer a dispute: `verified-as-reported`, `deleted` (never furnished again) or
    `modified` with the corrected status and amounts (statuses: current and the 30-120 days
    past due ones), which the next monthly file carries."""
    correction = None
    if body.correction is not None:
        if body.correction.status not in CORRECTABLE_STATUSES:
            raise InvalidCorrectionProblem(f"a correction cannot report {body.correction.status}")
        correction = Correction(**body.correction.model_dump())
    actor = Actor(kind=officer.kind, id=officer.id, role=INVESTIGATOR.value)
    try:
        return _out(await answer_dispute(rt, dispute_id, body.outcome, actor, correction))
    except UnknownDispute:
        raise NotFound("No such dispute.") from None
    except AlreadyAnswered as exc:
        raise Conflict(str(exc)) from None
    except InvalidCorrection as exc:
        raise InvalidCorrectionProblem(str(exc)) from None
