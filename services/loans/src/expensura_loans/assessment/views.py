"""Assessment over HTTP: the applicant asks for their application to be assessed."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from expensura_events.catalog.loans_assessment import AssessmentDecision
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Conflict, NotFound, Problem, Unavailable
from expensura_loans.assessment.domain import NotAssessable
from expensura_loans.assessment.service import (
    AlreadyAssessed,
    AssessmentNotAllowed,
    DependencyDown,
    UnknownApplication,
    assess_application,
)
from expensura_loans.risk.problems import hold_problem
from expensura_loans.risk.service import HeldForReview, RefusedAfterReview

router = APIRouter(tags=["assessment"])


class AssessmentOut(BaseModel):
    application_id: UUID
    decision: AssessmentDecision
    # The principal reasons of a refusal (the adverse-action notice is mailed with them).
    reasons: list[str]
    decided_at: datetime


class ConsentRequiredProblem(Problem):
    status, title = 403, "Consent to credit assessment required"


@router.post(
    "/v1/loan-applications/{application_id}/assessment",
    responses={403: {}, 404: {}, 409: {}, 503: {}},
)
async def request_assessment(
    application_id: UUID, caller: CurrentUser, rt: Runtime
) -> AssessmentOut:
    """Assess the application (USE-2): a credit report is pulled from the bureau with the
    applicant's consent to credit assessment, and the decision is final (once per
    application). A refusal gives its principal reasons and an adverse-action notice."""
    try:
        result = await assess_application(rt, caller.id, application_id)
    except UnknownApplication:
        raise NotFound("No such application of yours.") from None
    except (HeldForReview, RefusedAfterReview) as exc:
        raise hold_problem(exc) from None
    except AlreadyAssessed as exc:
        raise Conflict(f"Already assessed: {exc.decision}.") from None
    except NotAssessable as exc:
        raise Conflict(str(exc)) from None
    except AssessmentNotAllowed:
        raise ConsentRequiredProblem(
            "Give your consent to credit assessment first: POST /v1/me/consents."
        ) from None
    except DependencyDown:
        raise Unavailable("The credit bureau or consent did not answer; retry later.") from None
    return AssessmentOut(
        application_id=result.application_id,
        decision=result.outcome.decision,
        reasons=[r.value for r in result.outcome.reasons],
        decided_at=result.decided_at,
    )
