"""Use cases of loan applications: one transaction each, the state and its events together."""

from __future__ import annotations

from uuid import uuid4

from expensura_events.catalog.loans import LoanApplicationRefused
from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind
from expensura_loans.applications import store
from expensura_loans.applications.domain import (
    BASIS,
    PURPOSE,
    LoanApplication,
    LoanTerms,
    VerificationRequired,
    applicant_stream,
    application_stream,
    decide,
)


async def apply_for_loan(
    rt: ServiceRuntime, applicant_id: str, terms: LoanTerms
) -> LoanApplication:
    """The applicant applies for themselves. Raises `VerificationRequired` (USE-1) once the
    refusal is committed: a refused application is recorded, never lost with a rollback."""
    application = LoanApplication(
        application_id=uuid4(), subject_id=applicant_id, terms=terms, received_at=utcnow()
    )
    actor = Actor(kind=ActorKind.USER, id=applicant_id)
    async with rt.engine.begin() as conn:
        event = decide(application, applicant_verified=await store.is_verified(conn, applicant_id))
        if isinstance(event, LoanApplicationRefused):
            stream = applicant_stream(applicant_id)
        else:
            stream = application_stream(application.application_id)
            await store.add_application(conn, application)
        envelope = rt.envelope(
            event,
            stream_id=stream,
            subject_id=applicant_id,
            actor=actor,
            purpose=PURPOSE,
            legal_basis=BASIS,
        )
        await rt.append(conn, [envelope])
    if isinstance(event, LoanApplicationRefused):
        raise VerificationRequired(event.reason)
    return application
