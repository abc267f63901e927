"""Loan applications over HTTP: parse, call the service, map its errors."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header
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
from expensura_loans.risk.domain import NotPresentable, presented

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


class InvalidEvidenceProblem(Problem):
    status, title = 422, "Invalid device or card evidence"


# USE-6: what the app sends for the fraud and risk signals (`risk.domain.PRESENTED_EVIDENCE`):
# its installation's device id, and the fingerprint its card tokeniser gives for the bank
# card (never the card number). Loans keys both with its own secret on arrival.
DeviceId = Annotated[
    str,
    Header(
        alias="Expensura-Device-Id",
        max_length=200,
        description="the app installation's device id (not the IDFA)",
    ),
]
CardFingerprint = Annotated[
    str,
    Header(
        alias="Expensura-Card-Fingerprint",
        max_length=200,
        description="the card tokeniser's fingerprint of the bank card, never its number",
    ),
]


@router.post("/v1/loan-applications", status_code=201, responses={403: {}, 422: {}})
async def apply(
    body: ApplicationRequest,
    caller: CurrentUser,
    rt: Runtime,
    device_id: DeviceId,
    card_fingerprint: CardFingerprint,
) -> Application:
    """Apply for a loan. `status` is `received`, or `held-for-review` when a fraud or risk
    signal fired (USE-6): a risk analyst reviews it before it can be assessed."""
    terms = LoanTerms(amount_cents=body.amount_cents, term_months=body.term_months)
    try:
        evidence = presented({"device_id": device_id, "card_fingerprint": card_fingerprint})
    except NotPresentable as exc:
        raise InvalidEvidenceProblem(str(exc)) from None
    try:
        application = await apply_for_loan(
            rt,
            caller.id,
            terms,
            body.purpose,
            body.stated_monthly_income_cents,
            evidence=evidence,
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
