"""Use cases of loan applications: one transaction each, the state and its events together.

The amount, the loan's purpose and the stated income are kept sealed with the applicant's
key (SEC-1). No query needs them in plaintext: the limits are checked on the request before
they are sealed (`LoanTerms`, `LoanApplication`), and an assessment reads one application,
opened here. Aggregates over amounts (RUL-3 statistics)
would open them per subject, and an erased subject's amounts no longer count."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

from expensura_events.catalog.loans import LoanApplicationRefused
from expensura_events.envelope import REDACTED, Actor, EventEnvelope, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.sealing import place, seal, unseal
from expensura_events.vocabulary import ActorKind
from expensura_loans.applications import store
from expensura_loans.applications.domain import (
    BASIS,
    PURPOSE,
    REFUSED_EMAIL_UNPROVEN,
    ApplicationStatus,
    EmailProofRequired,
    LoanApplication,
    LoanPurpose,
    LoanTerms,
    VerificationRequired,
    applicant_stream,
    application_stream,
    decide,
)
from expensura_loans.retention.service import record_envelope
from expensura_loans.risk import service as risk
from expensura_loans.risk.domain import PresentedEvidence


async def apply_for_loan(
    rt: ServiceRuntime,
    applicant_id: str,
    terms: LoanTerms,
    purpose: LoanPurpose,
    stated_monthly_income_cents: int,
    *,
    evidence: PresentedEvidence,
) -> LoanApplication:
    """The applicant applies for themselves, from the device and with the card `evidence`
    names. Raises `EmailProofRequired` or `VerificationRequired` (USE-1) once the refusal is
    committed: a refused application is recorded, never lost with a rollback. The risk
    signals (USE-6) are screened in the same transaction: an application a signal fired on
    is received `held-for-review`."""
    keyed = await risk.pseudonyms(rt, evidence)
    application = LoanApplication(
        application_id=uuid4(),
        subject_id=applicant_id,
        terms=terms,
        received_at=utcnow(),
        purpose=purpose,
        stated_monthly_income_cents=stated_monthly_income_cents,
    )
    actor = Actor(kind=ActorKind.USER, id=applicant_id)
    async with rt.engine.begin() as conn:
        event = decide(
            application,
            applicant_verified=await store.is_verified(conn, applicant_id),
            email_proven=await store.is_email_proven(conn, applicant_id),
        )
        screened: list[EventEnvelope] = []
        if isinstance(event, LoanApplicationRefused):
            stream = applicant_stream(applicant_id)
            await risk.screen_application(
                rt,
                conn,
                subject_id=applicant_id,
                application_id=None,
                keyed=keyed,
                at=application.received_at,
            )
        else:
            stream = application_stream(application.application_id)
            await store.add_application(
                conn,
                application,
                await _seal_amount(
                    rt, applicant_id, application.application_id, terms.amount_cents
                ),
                await seal(
                    rt.mapper.cipher,
                    applicant_id,
                    _where(application.application_id),
                    {"loan_purpose": purpose.value, "income_cents": stated_monthly_income_cents},
                ),
            )
            screened = await risk.screen_application(
                rt,
                conn,
                subject_id=applicant_id,
                application_id=application.application_id,
                keyed=keyed,
                at=application.received_at,
            )
        envelope = record_envelope(
            rt,
            event,
            stream_id=stream,
            subject_id=applicant_id,
            actor=actor,
            purpose=PURPOSE,
            legal_basis=BASIS,
        )
        await rt.append(conn, [envelope, *screened])
    if isinstance(event, LoanApplicationRefused):
        if event.reason == REFUSED_EMAIL_UNPROVEN:
            raise EmailProofRequired(event.reason)
        raise VerificationRequired(event.reason)
    if screened:
        return replace(application, status=ApplicationStatus.HELD_FOR_REVIEW)
    return application


def _where(application_id: UUID) -> str:
    return place("loan_applications", application_id)


async def _seal_amount(
    rt: ServiceRuntime, subject_id: str, application_id: UUID, amount_cents: int
) -> dict[str, Any]:
    sealed = await seal(
        rt.mapper.cipher, subject_id, _where(application_id), {"amount_cents": amount_cents}
    )
    return sealed["amount_cents"]


async def applications_of(rt: ServiceRuntime, subject_id: str) -> list[LoanApplication]:
    """The subject's applications with their amounts opened; none once their key is
    destroyed (an amount that reads as redacted is no application anyone can act on)."""
    async with rt.engine.connect() as conn:
        stored = await store.applications_of(conn, subject_id)
    return [a for row in stored if (a := await _opened(rt, row)) is not None]


async def application_of(
    rt: ServiceRuntime, subject_id: str, application_id: UUID
) -> LoanApplication | None:
    """One of the subject's applications, opened (None: not theirs, unknown or erased)."""
    async with rt.engine.connect() as conn:
        row = await store.application(conn, application_id)
    if row is None or row.subject_id != subject_id:
        return None
    return await _opened(rt, row)


async def _opened(rt: ServiceRuntime, row: store.StoredApplication) -> LoanApplication | None:
    where = _where(row.application_id)
    amount: Any = row.legacy_amount_cents
    if row.amount_sealed is not None:
        opened = await unseal(
            rt.mapper.cipher, row.subject_id, where, {"amount_cents": row.amount_sealed}
        )
        amount = opened["amount_cents"]
    if amount is None or amount == REDACTED:
        return None
    facts: dict[str, Any] = {}
    if row.facts_sealed is not None:
        facts = await unseal(rt.mapper.cipher, row.subject_id, where, row.facts_sealed)
    purpose, income = facts.get("loan_purpose"), facts.get("income_cents")
    return LoanApplication(
        application_id=row.application_id,
        subject_id=row.subject_id,
        terms=LoanTerms(amount_cents=int(amount), term_months=row.term_months),
        received_at=row.received_at,
        purpose=LoanPurpose(purpose) if isinstance(purpose, str) and purpose in _PURPOSES else None,
        stated_monthly_income_cents=income if isinstance(income, int) else None,
    )


_PURPOSES = frozenset(p.value for p in LoanPurpose)


async def seal_legacy_amounts(rt: ServiceRuntime, stop: asyncio.Event, batch: int = 100) -> None:
    """A worker: seal the amounts stored in plaintext before sealing (loans_0003), then
    stop; nothing to do once every row is sealed."""
    while not stop.is_set():
        async with rt.engine.begin() as conn:
            rows = await store.with_plaintext_amounts(conn, batch)
            for row in rows:
                if row.legacy_amount_cents is None:
                    continue
                sealed = await _seal_amount(
                    rt, row.subject_id, row.application_id, row.legacy_amount_cents
                )
                await store.replace_amount(conn, row.application_id, sealed)
        if len(rows) < batch:
            return
