"""Loan applications over HTTP: parse, call the service, map its errors."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_loans.applications.domain import (
    MAX_AMOUNT_CENTS,
    MAX_STATED_MONTHLY_INCOME_CENTS,
    MAX_TERM_MONTHS,
    EmailProofRequired,
    LoanPurpose,
    LoanTerms,
    VerificationRequired,
)
from expensura_loans.applications.service import apply_for_loan

router = APIRouter(tags=["loan applications"])


class ApplicationRequest(BaseModel):
    amount_cents: Annotated[int, Field(gt=0, le=MAX_AMOUNT_CENTS)]
    term_months: Annotated[int, Field(gt=0, le=MAX_TERM_MONTHS)]
    purpose: LoanPurpose
    stated_monthly_income_cents: Annotated[
        int, Field(ge=0, le=MAX_STATED_MONTHLY_INCOME_CENTS, description="before tax")
    ]


class Application(BaseModel):
    application_id: UUID
    status: str


class VerificationRequiredProblem(Problem):
    status, title = 403, "Real-name verification required"


class EmailProofRequiredProblem(Problem):
    status, title = 403, "E-mail proof required"


@router.post("/v1/loan-applications", status_code=201, responses={403: {}})
async def apply(body: ApplicationRequest, caller: CurrentUser, rt: Runtime) -> Application:
    terms = LoanTerms(amount_cents=body.amount_cents, term_months=body.term_months)
    try:
        application = await apply_for_loan(
            rt, caller.id, terms, body.purpose, body.stated_monthly_income_cents
        )
    except EmailProofRequired:
        raise EmailProofRequiredProblem(
            "Confirm your e-mail first: POST /v1/me/email-proof with the code mailed to you."
        ) from None
    except VerificationRequired:
        raise VerificationRequiredProblem(
            "Verify your real name first: POST /v1/me/verification."
        ) from None
    return Application(application_id=application.application_id, status=application.status)
