"""Risk reviews over HTTP, for risk analysts only (staff with MFA and the risk-analyst role,
SEC-2): the queue of holds, one hold's evidence (read for a stated purpose, and recorded
where the customer sees it), and the conclusion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from expensura_events.auth import Principal
from expensura_events.catalog.loans_risk import ReviewOutcome, RiskSignalKind
from expensura_events.vocabulary import Purpose
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Conflict, NotFound, Problem
from expensura_loans.risk.domain import REVIEWER_ROLE, PurposeNotServed
from expensura_loans.risk.service import (
    ReviewAlreadyConcluded,
    ReviewView,
    UnknownReview,
    conclude_review,
    open_reviews,
    review_evidence,
)

router = APIRouter(tags=["risk reviews"])

Analyst = Annotated[Principal, Depends(staff_with(REVIEWER_ROLE))]


class ReviewOut(BaseModel):
    application_id: UUID
    stage: str
    loan_id: UUID | None
    kinds: list[RiskSignalKind]
    state: str
    held_at: datetime
    concluded_at: datetime | None


class ReviewsOut(BaseModel):
    reviews: list[ReviewOut]


class SignalOut(BaseModel):
    kind: RiskSignalKind
    evidence: dict[str, Any]


class EvidenceOut(BaseModel):
    review: ReviewOut
    received_at: datetime | None
    signals: list[SignalOut]


class ConclusionIn(BaseModel):
    outcome: ReviewOutcome
    purpose: Purpose = Field(description="security or credit-assessment")


class PurposeNotServedProblem(Problem):
    status, title = 403, "Purpose not served by a risk review"


def _out(view: ReviewView) -> ReviewOut:
    return ReviewOut(
        application_id=view.application_id,
        stage=view.stage.value,
        loan_id=view.loan_id,
        kinds=view.kinds,
        state=view.state.value,
        held_at=view.held_at,
        concluded_at=view.concluded_at,
    )


@router.get("/v1/risk-reviews")
async def review_queue(analyst: Analyst, rt: Runtime) -> ReviewsOut:
    """Open holds, oldest first: the application, the step held and the signals' kinds (no
    evidence, no personal data: reading the queue is not a read of anyone's data)."""
    return ReviewsOut(reviews=[_out(v) for v in await open_reviews(rt)])


@router.get("/v1/risk-reviews/{application_id}", responses={403: {}, 404: {}})
async def review_detail(
    application_id: UUID,
    analyst: Analyst,
    rt: Runtime,
    purpose: Annotated[Purpose, Query(description="security or credit-assessment")],
    case_reference: Annotated[str, Query(min_length=1, max_length=100)],
) -> EvidenceOut:
    """A hold's evidence, for a purpose a risk review serves: the read is recorded on the
    customer's access stream (they see it in their data) before it is shown."""
    try:
        found = await review_evidence(
            rt,
            application_id,
            staff_id=analyst.id,
            roles=analyst.roles,
            purpose=purpose,
            case_reference=case_reference,
        )
    except PurposeNotServed as exc:
        raise PurposeNotServedProblem(str(exc)) from None
    except UnknownReview:
        raise NotFound("No risk review of that application.") from None
    return EvidenceOut(
        review=_out(found.review),
        received_at=found.received_at,
        signals=[SignalOut(kind=s["kind"], evidence=s["evidence"]) for s in found.signals],
    )


@router.post("/v1/risk-reviews/{application_id}/conclusion", responses={403: {}, 404: {}, 409: {}})
async def conclude(
    application_id: UUID, body: ConclusionIn, analyst: Analyst, rt: Runtime
) -> ReviewOut:
    """Conclude the open hold: `cleared` lets the application (or its payout) go on,
    `confirmed-fraud` refuses it (and the applicant is sent the notice of the refusal)."""
    try:
        view = await conclude_review(
            rt,
            application_id,
            body.outcome,
            staff_id=analyst.id,
            roles=analyst.roles,
            purpose=body.purpose,
        )
    except PurposeNotServed as exc:
        raise PurposeNotServedProblem(str(exc)) from None
    except UnknownReview:
        raise NotFound("No risk review of that application.") from None
    except ReviewAlreadyConcluded as exc:
        raise Conflict(str(exc)) from None
    return _out(view)
