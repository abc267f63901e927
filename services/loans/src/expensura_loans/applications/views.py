"""Loan applications: refused until the applicant's real name is verified (USE-1)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from expensura_events.catalog.loans import LoanApplicationReceived, LoanApplicationRefused
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.vocabulary import ActorKind, LegalGround, Purpose
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_loans.applications.projection import loan_applications, verified_subjects

router = APIRouter(tags=["loan applications"])
BASIS = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="loan application")


class ApplicationRequest(BaseModel):
    amount_cents: Annotated[int, Field(gt=0, le=10_000_000)]
    term_months: Annotated[int, Field(gt=0, le=120)]


class Application(BaseModel):
    application_id: UUID
    status: str


class VerificationRequired(Problem):
    status, title = 403, "Real-name verification required"


@router.post("/v1/loan-applications", status_code=201, responses={403: {}})
async def apply(body: ApplicationRequest, caller: CurrentUser, rt: Runtime) -> Application:
    actor = Actor(kind=ActorKind.USER, id=caller.id)
    async with rt.engine.begin() as conn:
        verified = (
            await conn.execute(
                select(verified_subjects.c.subject_id).where(
                    verified_subjects.c.subject_id == caller.id
                )
            )
        ).first()
        if verified is None:
            await rt.append(
                conn,
                [
                    rt.envelope(
                        LoanApplicationRefused(reason="real-name verification required"),
                        stream_id=f"applicant-{caller.id}",
                        subject_id=caller.id,
                        actor=actor,
                        purpose=Purpose.LOAN_SERVICE_PROVISION,
                        legal_basis=BASIS,
                    )
                ],
            )
            refused = True
        else:
            refused = False
            application_id = uuid4()
            await conn.execute(
                loan_applications.insert().values(
                    application_id=application_id,
                    subject_id=caller.id,
                    amount_cents=str(body.amount_cents),
                    term_months=str(body.term_months),
                    received_at=utcnow(),
                )
            )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        LoanApplicationReceived(
                            application_id=application_id,
                            amount_cents=body.amount_cents,
                            term_months=body.term_months,
                        ),
                        stream_id=f"application-{application_id}",
                        subject_id=caller.id,
                        actor=actor,
                        purpose=Purpose.LOAN_SERVICE_PROVISION,
                        legal_basis=BASIS,
                    )
                ],
            )
    if refused:
        raise VerificationRequired("Verify your real name first: POST /v1/me/verification.")
    return Application(application_id=application_id, status="received")
