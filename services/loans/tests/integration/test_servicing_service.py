"""Servicing against loans' real database (no HTTP): the servicing cycle as of chosen days,
so a loan can be followed from its offer to a charge-off without waiting months (USE-3);
the notices each step requests, once each (USE-10); a balance dispute's case (USE-8)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.catalog.loans_servicing import BalanceDisputeOpened, dispute_case_digest
from expensura_events.envelope import EventEnvelope, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_loans.applications.domain import LoanApplication, LoanPurpose, LoanTerms
from expensura_loans.servicing import notices
from expensura_loans.servicing.domain import LoanState, NotDisputable
from expensura_loans.servicing.service import (
    LoanView,
    UnknownLoan,
    accept_offer,
    dispute_balance,
    loan_stream,
    loans_of,
    make_offer,
    pay,
    run_servicing_cycle,
)
from expensura_loans.settings import loans_settings

pytestmark = pytest.mark.obligation("USE-3")


async def offered_loan(rt: ServiceRuntime) -> tuple[str, LoanView]:
    """An approved application's offer, made today (in its own transaction, as assessment
    makes it in the decision's)."""
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
    return subject, offered


async def active_loan(rt: ServiceRuntime) -> tuple[str, LoanView]:
    """An approved application's offer, accepted (and so disbursed) today."""
    subject, offered = await offered_loan(rt)
    accepted = await accept_offer(
        rt, subject, offered.loan_id, offered.disclosure.disclosure_version
    )
    assert accepted.state is LoanState.ACTIVE
    return subject, accepted


async def loan_stream_of(rt: ServiceRuntime, view: LoanView) -> list[EventEnvelope]:
    async with rt.engine.connect() as conn:
        return await rt.store.read_stream(conn, loan_stream(view.loan_id))


async def loan_events(rt: ServiceRuntime, view: LoanView) -> list[str]:
    """The lifecycle's events on the loan's stream (the notices it requests aside)."""
    return [
        e.event_type
        for e in await loan_stream_of(rt, view)
        if e.event_type != CustomerNoticeRequested.event_type
    ]


async def loan_notices(rt: ServiceRuntime, view: LoanView) -> list[CustomerNoticeRequested]:
    return [
        e.payload
        for e in await loan_stream_of(rt, view)
        if isinstance(e.payload, CustomerNoticeRequested)
    ]


def of_kind(
    requests: list[CustomerNoticeRequested], kind: NoticeKind
) -> list[CustomerNoticeRequested]:
    return [r for r in requests if r.kind is kind]


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


# --- loan communications (USE-10) ---------------------------------------------------------------


@pytest.mark.obligation("USE-10")
async def test_the_offer_document_is_requested_once_with_the_offer(rt: ServiceRuntime) -> None:
    subject, loan = await offered_loan(rt)
    stream = await loan_stream_of(rt, loan)
    assert [e.event_type for e in stream] == [
        "loans.LoanOffered",
        "loans.CustomerNoticeRequested",
    ]
    # appended together with the offer it tells of, right after it
    assert stream[0].sequence is not None and stream[1].sequence == stream[0].sequence + 1
    [document] = of_kind(await loan_notices(rt, loan), NoticeKind.OFFER)
    assert document.notice_id == notices.offer_notice_id(loan.loan_id)
    d = loan.disclosure
    for figure in (
        f"{d.annual_percentage_rate}%",
        notices.dollars(d.finance_charge_cents),
        notices.dollars(d.amount_financed_cents),
        notices.dollars(d.total_of_payments_cents),
        f"Disclosure version: {d.disclosure_version}",
    ):
        assert figure in document.body, figure
    assert stream[1].purpose.value == "communication"
    accepted = await accept_offer(rt, subject, loan.loan_id, d.disclosure_version)
    assert accepted.state is LoanState.ACTIVE
    assert len(of_kind(await loan_notices(rt, loan), NoticeKind.OFFER)) == 1


@pytest.mark.obligation("USE-10")
async def test_each_applied_payment_gets_one_receipt_and_a_retry_none(rt: ServiceRuntime) -> None:
    subject, loan = await active_loan(rt)
    first = await pay(rt, subject, loan.loan_id, 30_000, "receipt-key-1")
    again = await pay(rt, subject, loan.loan_id, 30_000, "receipt-key-1")  # a retry
    assert again.replayed and not first.replayed
    await pay(rt, subject, loan.loan_id, 10_000, "receipt-key-2")
    receipts = of_kind(await loan_notices(rt, loan), NoticeKind.RECEIPT)
    assert [r.notice_id for r in receipts] == [
        notices.receipt_notice_id(loan.loan_id, "receipt-key-1"),
        notices.receipt_notice_id(loan.loan_id, "receipt-key-2"),
    ]
    assert "Amount paid: $300.00" in receipts[0].body
    assert f"- to principal: {notices.dollars(first.to_principal_cents)}" in receipts[0].body
    assert "Amount paid: $100.00" in receipts[1].body
    # each receipt follows the payment it tells of, in its transaction
    stream = [e.event_type for e in await loan_stream_of(rt, loan)]
    assert stream[-4:] == [
        "loans.PaymentReceived",
        "loans.CustomerNoticeRequested",
        "loans.PaymentReceived",
        "loans.CustomerNoticeRequested",
    ]


@pytest.mark.obligation("USE-10")
async def test_a_missed_installment_gets_one_late_notice_however_often_the_cycle_runs(
    rt: ServiceRuntime,
) -> None:
    _, loan = await active_loan(rt)
    schedule = loan.disclosure.payment_schedule
    late_day = schedule[1].due_date + timedelta(days=3)  # two installments missed by then
    for _ in range(2):
        await run_servicing_cycle(rt, late_day)
    late = of_kind(await loan_notices(rt, loan), NoticeKind.LATE_NOTICE)
    assert [n.notice_id for n in late] == [
        notices.late_notice_id(loan.loan_id, 1),
        notices.late_notice_id(loan.loan_id, 2),
    ]
    past_due = notices.dollars(schedule[0].amount_cents + schedule[1].amount_cents)
    assert f"Total past due as of {late_day}: {past_due}" in late[1].body
    assert (await loan_events(rt, loan)).count("loans.PaymentMissed") == 2


@pytest.mark.obligation("USE-10")
async def test_a_payment_due_reminder_goes_once_per_installment_before_its_due_date(
    rt: ServiceRuntime,
) -> None:
    subject, loan = await active_loan(rt)
    schedule = loan.disclosure.payment_schedule
    lead = loans_settings(rt).payment_due_reminder_days
    assert lead == 5  # the default
    first_due = schedule[0].due_date

    await run_servicing_cycle(rt, first_due - timedelta(days=lead + 1))  # not yet
    assert of_kind(await loan_notices(rt, loan), NoticeKind.PAYMENT_DUE) == []
    for day in (lead, lead, 2, 0):  # the cycle runs hourly, every day of the window
        await run_servicing_cycle(rt, first_due - timedelta(days=day))
    [reminder] = of_kind(await loan_notices(rt, loan), NoticeKind.PAYMENT_DUE)
    assert reminder.notice_id == notices.payment_due_notice_id(loan.loan_id, 1)
    assert f"due on {first_due} (in {lead} days)" in reminder.body
    assert f"Amount due: {notices.dollars(schedule[0].amount_cents)}" in reminder.body

    # the second installment is paid ahead: no reminder for it; the third gets its own
    await pay(rt, subject, loan.loan_id, schedule[0].amount_cents, "due-key-1")
    await pay(rt, subject, loan.loan_id, schedule[1].amount_cents, "due-key-2")
    await run_servicing_cycle(rt, schedule[1].due_date - timedelta(days=1))
    await run_servicing_cycle(rt, schedule[2].due_date - timedelta(days=3))
    await run_servicing_cycle(rt, schedule[2].due_date - timedelta(days=3))
    reminders = of_kind(await loan_notices(rt, loan), NoticeKind.PAYMENT_DUE)
    assert [r.notice_id for r in reminders] == [
        notices.payment_due_notice_id(loan.loan_id, 1),
        notices.payment_due_notice_id(loan.loan_id, 3),
    ]
    assert await state_of(rt, subject) is LoanState.ACTIVE


# --- balance disputes (USE-8) --------------------------------------------------------------------


@pytest.mark.obligation("USE-8")
async def test_the_borrower_opens_a_dispute_case_with_its_reason_sealed(rt: ServiceRuntime) -> None:
    subject, loan = await active_loan(rt)
    opened = await dispute_balance(rt, subject, loan.loan_id, "My March payment is not counted")
    again = await dispute_balance(rt, subject, loan.loan_id, "Still not counted")
    assert opened.case_reference != again.case_reference  # each dispute its own case
    stream = await loan_stream_of(rt, loan)
    disputes = [e for e in stream if isinstance(e.payload, BalanceDisputeOpened)]
    cases = [
        e.payload.case_reference for e in disputes if isinstance(e.payload, BalanceDisputeOpened)
    ]
    assert cases == [opened.case_reference, again.case_reference]
    assert {e.subject_id for e in disputes} == {subject}
    assert disputes[0].purpose.value == "dispute-resolution"
    # the reason is sealed in the log: its words never appear in the stored record
    async with rt.engine.connect() as conn:
        records = await rt.store.read_records(conn, 0, 10_000, ["loans.BalanceDisputeOpened"])
    digest = dispute_case_digest(opened.case_reference).encode()
    mine = [r.record for r in records if digest in r.record]
    assert len(mine) == 1 and b"March payment" not in mine[0]
    assert opened.case_reference.encode() not in mine[0]  # the reference too: sealed


@pytest.mark.obligation("USE-8")
async def test_no_dispute_of_another_borrowers_loan_or_of_an_offer(rt: ServiceRuntime) -> None:
    _, loan = await active_loan(rt)
    with pytest.raises(UnknownLoan):
        await dispute_balance(rt, str(uuid.uuid4()), loan.loan_id, "Not mine but let me")
    offered_subject, offer = await offered_loan(rt)
    with pytest.raises(NotDisputable):
        await dispute_balance(rt, offered_subject, offer.loan_id, "No balance yet")
    assert "loans.BalanceDisputeOpened" not in await loan_events(rt, offer)
