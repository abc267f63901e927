"""The application use case against loans' real database (no HTTP): USE-1's gate as the
service layer applies it, the refusal committed, the terms stored as numbers, erasure."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select, text

from expensura_events.catalog.identity import EmailOwnershipProven
from expensura_events.catalog.identity_verification import RealNameVerified
from expensura_events.envelope import Actor, EventEnvelope, new_event_id, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import event_log
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_loans.applications import service, store
from expensura_loans.applications.domain import (
    EmailProofRequired,
    LoanPurpose,
    LoanTerms,
    VerificationRequired,
)
from expensura_loans.applications.projection import ProvenEmails, VerifiedSubjects
from expensura_loans.applications.service import apply_for_loan
from expensura_loans.erasure import erase_loans_state
from expensura_loans.risk.domain import PresentedEvidence
from expensura_loans.settings import LoansSettings, loans_settings


def fresh() -> PresentedEvidence:
    """A device and card of their own, so that no risk signal fires (USE-6)."""
    return PresentedEvidence(str(uuid.uuid4()), f"fp_{uuid.uuid4().hex}")


def proven(subject: str) -> EventEnvelope:
    payload = EmailOwnershipProven(method="one-time-code")
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"email-proof-{subject}",
        stream_version=1,
        subject_id=subject,
        actor=Actor(kind=ActorKind.USER, id=subject),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        correlation_id=new_event_id(),
        payload=payload,
    )


async def eligible(rt: ServiceRuntime, subject: str, *, verify: bool = True) -> None:
    """What identity's events tell loans of a subject: their e-mail proven, and verified."""
    async with rt.engine.begin() as conn:
        await ProvenEmails().apply(conn, proven(subject))
        if verify:
            await VerifiedSubjects().apply(conn, verified(subject))


def verified(subject: str) -> EventEnvelope:
    payload = RealNameVerified(
        request_id=uuid.uuid4(),
        trust_framework="sandbox",
        verified_at=utcnow(),
        verifier="sandbox agency",
        transaction_id="tx-1",
        evidence="[]",
    )
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"verification-{subject}",
        stream_version=1,
        subject_id=subject,
        actor=Actor.system("verification"),
        purpose=Purpose.IDENTITY_VERIFICATION,
        correlation_id=new_event_id(),
        payload=payload,
    )


async def logged(rt: ServiceRuntime, subject: str) -> list[tuple[str, str]]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(event_log.c.event_type, event_log.c.stream_id)
            .where(event_log.c.subject_id == subject)
            .order_by(event_log.c.seq)
        )
        return [(r.event_type, r.stream_id) for r in rows]


@pytest.mark.obligation("USE-1")
async def test_an_unverified_applicant_is_refused_and_the_refusal_is_committed(
    rt: ServiceRuntime,
) -> None:
    subject = str(uuid.uuid4())
    await eligible(rt, subject, verify=False)
    with pytest.raises(VerificationRequired):
        await apply_for_loan(
            rt, subject, LoanTerms(100_000, 12), LoanPurpose.VEHICLE, 400_000, evidence=fresh()
        )
    assert await logged(rt, subject) == [("loans.LoanApplicationRefused", f"applicant-{subject}")]
    async with rt.engine.connect() as conn:
        assert await store.applications_of(conn, subject) == []


async def test_a_verified_applicant_whose_e_mail_is_unproven_is_refused_and_it_is_committed(
    rt: ServiceRuntime,
) -> None:
    subject = str(uuid.uuid4())
    async with rt.engine.begin() as conn:
        await VerifiedSubjects().apply(conn, verified(subject))
    with pytest.raises(EmailProofRequired):
        await apply_for_loan(
            rt, subject, LoanTerms(100_000, 12), LoanPurpose.VEHICLE, 400_000, evidence=fresh()
        )
    assert await logged(rt, subject) == [("loans.LoanApplicationRefused", f"applicant-{subject}")]
    async with rt.engine.connect() as conn:
        assert await store.applications_of(conn, subject) == []
    await eligible(rt, subject)  # the proof arrives (twice: the projection is idempotent)
    await eligible(rt, subject)
    assert await apply_for_loan(
        rt, subject, LoanTerms(100_000, 12), LoanPurpose.VEHICLE, 400_000, evidence=fresh()
    )


@pytest.mark.obligation("USE-1", "SEC-1")
async def test_once_identity_verified_the_applicant_the_application_is_received(
    rt: ServiceRuntime,
) -> None:
    subject = str(uuid.uuid4())
    await eligible(rt, subject)
    application = await apply_for_loan(
        rt, subject, LoanTerms(9_999_999, 120), LoanPurpose.VEHICLE, 400_000, evidence=fresh()
    )

    [stored] = await service.applications_of(rt, subject)
    async with rt.engine.connect() as conn:
        types: dict[str, str] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = 'loan_applications' "
                        "AND column_name IN ('amount_sealed', 'term_months')"
                    )
                )
            ).all()
        )
        row = (
            await conn.execute(
                text(
                    "SELECT amount_cents, amount_sealed::text, facts_sealed::text"
                    " FROM loan_applications "
                    "WHERE application_id = :id"
                ),
                {"id": application.application_id},
            )
        ).one()
    assert stored == application and stored.terms == LoanTerms(9_999_999, 120)
    assert types == {"amount_sealed": "jsonb", "term_months": "integer"}
    # the amount is sealed with the applicant's key (SEC-1): no plaintext copy
    assert row.amount_cents is None and "9999999" not in row.amount_sealed
    assert "400000" not in row.facts_sealed and "vehicle" not in row.facts_sealed
    assert stored.purpose is LoanPurpose.VEHICLE and stored.stated_monthly_income_cents == 400_000
    await rt.keys.destroy(subject)
    assert await service.applications_of(rt, subject) == []  # crypto-shredded
    assert await logged(rt, subject) == [
        ("loans.LoanApplicationReceived", f"application-{application.application_id}")
    ]


async def test_erasure_removes_the_subject_s_applications_only(rt: ServiceRuntime) -> None:
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    for subject in (erased, kept):
        await eligible(rt, subject)
    for subject in (erased, kept, erased):
        await apply_for_loan(
            rt, subject, LoanTerms(50_000, 6), LoanPurpose.VEHICLE, 400_000, evidence=fresh()
        )
    async with rt.engine.begin() as conn:
        assert await erase_loans_state(conn, erased) == {
            "loan_applications": 2,
            "furnished_accounts": 0,
            "bureau_disputes": 0,
            "risk_observations": 2,
            "risk_payout_account_changes": 0,
            "risk_reviews": 0,
            "loans": 0,
            "loan_payments": 0,
        }
    assert await service.applications_of(rt, erased) == []
    assert len(await service.applications_of(rt, kept)) == 1


def test_the_runtime_carries_loans_typed_settings(rt: ServiceRuntime) -> None:
    assert isinstance(loans_settings(rt), LoansSettings)


async def test_amounts_stored_in_plaintext_before_sealing_are_sealed_at_start(
    rt: ServiceRuntime,
) -> None:
    subject = str(uuid.uuid4())
    application_id = uuid.uuid4()
    async with rt.engine.begin() as conn:  # a row as loans_0002 left it
        await conn.execute(
            text(
                "INSERT INTO loan_applications (application_id, subject_id, amount_cents, "
                "term_months, received_at) VALUES (:id, :s, 7654321, 24, now())"
            ),
            {"id": application_id, "s": subject},
        )
    await service.seal_legacy_amounts(rt, asyncio.Event())
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT amount_cents, amount_sealed::text, facts_sealed::text"
                    " FROM loan_applications "
                    "WHERE application_id = :id"
                ),
                {"id": application_id},
            )
        ).one()
    assert row.amount_cents is None and "7654321" not in row.amount_sealed
    [opened] = await service.applications_of(rt, subject)
    assert opened.terms == LoanTerms(7_654_321, 24)
