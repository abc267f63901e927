"""Servicing against loans' real database (no HTTP): the servicing cycle as of chosen days,
so a loan can be followed from its offer to a charge-off without waiting months (USE-3)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_loans.applications.domain import LoanApplication, LoanPurpose, LoanTerms
from expensura_loans.servicing.domain import LoanState
from expensura_loans.servicing.service import (
    LoanView,
    accept_offer,
    loan_stream,
    loans_of,
    make_offer,
    pay,
    run_servicing_cycle,
)

pytestmark = pytest.mark.obligation("USE-3")


async def active_loan(rt: ServiceRuntime) -> tuple[str, LoanView]:
    """An approved application's offer, accepted (and so disbursed) today."""
    subject = str(uuid.uuid4())
    application = LoanApplication(
        uuid.uuid4(),
        subject,
        LoanTerms(120_000, 12),
        utcnow(),
        purpose=LoanPurpose.OTHER,
        stated_monthly_income_cents=500_000,
    )
    async with rt.engine.begin() as conn:
        await rt.append(conn, await make_offer(rt, conn, application, utcnow()))
    [offered] = await loans_of(rt, subject)
    assert offered.state is LoanState.OFFERED
    accepted = await accept_offer(
        rt, subject, offered.loan_id, offered.disclosure.disclosure_version
    )
    assert accepted.state is LoanState.ACTIVE
    return subject, accepted


async def loan_events(rt: ServiceRuntime, view: LoanView) -> list[str]:
    async with rt.engine.connect() as conn:
        stream = await rt.store.read_stream(conn, loan_stream(view.loan_id))
    return [e.event_type for e in stream]


async def state_of(rt: ServiceRuntime, subject: str) -> LoanState:
    [view] = await loans_of(rt, subject)
    return view.state


async def test_an_unpaid_loan_is_missed_once_per_installment_then_charged_off(
    rt: ServiceRuntime,
) -> None:
    subject, loan = await active_loan(rt)
    first_due: date = loan.disclosure.payment_schedule[0].due_date

    await run_servicing_cycle(rt, first_due)  # due today: not missed yet
    assert await state_of(rt, subject) is LoanState.ACTIVE
    for _ in range(2):  # the cycle runs every hour: the second run changes nothing
        await run_servicing_cycle(rt, first_due + timedelta(days=1))
    assert await state_of(rt, subject) is LoanState.DELINQUENT
    after_first = await loan_events(rt, loan)
    assert after_first[-2:] == ["loans.PaymentMissed", "loans.LoanBecameDelinquent"]
    assert after_first.count("loans.PaymentMissed") == 1

    await run_servicing_cycle(rt, first_due + timedelta(days=119))
    assert await state_of(rt, subject) is LoanState.DELINQUENT  # 119 days: not yet
    await run_servicing_cycle(rt, first_due + timedelta(days=120))
    assert await state_of(rt, subject) is LoanState.CHARGED_OFF
    events = await loan_events(rt, loan)
    assert events[-1] == "loans.LoanChargedOff"
    missed = [
        p for p in loan.disclosure.payment_schedule if p.due_date < first_due + timedelta(120)
    ]
    assert events.count("loans.PaymentMissed") == len(missed)  # each installment once
    assert events.count("loans.LoanBecameDelinquent") == 1

    await run_servicing_cycle(rt, first_due + timedelta(days=400))  # no longer serviced
    assert await loan_events(rt, loan) == events


async def test_a_loan_paid_ahead_is_not_missed(rt: ServiceRuntime) -> None:
    subject, loan = await active_loan(rt)
    schedule = loan.disclosure.payment_schedule
    await pay(rt, subject, loan.loan_id, schedule[0].amount_cents + schedule[1].amount_cents, "k-1")
    await run_servicing_cycle(rt, schedule[1].due_date + timedelta(days=1))
    assert await state_of(rt, subject) is LoanState.ACTIVE
    await run_servicing_cycle(rt, schedule[2].due_date + timedelta(days=1))
    assert await state_of(rt, subject) is LoanState.DELINQUENT
    assert (await loan_events(rt, loan)).count("loans.PaymentMissed") == 1  # the third only
