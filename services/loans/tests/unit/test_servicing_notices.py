"""Servicing's loan communications in memory (USE-10): each notice's text from the figures it
tells of, exact to the cent, titles that name no one, ids that make a repeat the same notice;
and the balance dispute's rule (USE-8)."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.catalog.loans_servicing import BalanceDisputeOpened, dispute_case_digest
from expensura_events.registry import REGISTRY, personal_fields
from expensura_loans.servicing.domain import (
    DISPUTABLE,
    LoanState,
    NotDisputable,
    ScheduledPayment,
    disclose,
    open_dispute,
)
from expensura_loans.servicing.notices import (
    dollars,
    late_notice,
    late_notice_id,
    offer_document,
    offer_notice_id,
    past_due_cents,
    payment_due_notice_id,
    payment_due_reminder,
    payment_receipt,
    receipt_notice_id,
    reminders_due,
)

pytestmark = pytest.mark.obligation("USE-10")

LOAN = uuid.UUID("3f2a9c1e-0000-4000-8000-000000000001")
FIRST_DUE = date(2027, 1, 31)
# $1,200 over 12 months at 14.99 %: 11 level payments and a final one that differs.
DISCLOSURE = disclose(120_000, Decimal("0.1499"), 12, FIRST_DUE)


def installment(number: int, amount_cents: int, due: date) -> ScheduledPayment:
    return ScheduledPayment(number, amount_cents, due)


@pytest.mark.parametrize(
    ("cents", "shown"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (10_830, "$108.30"),
        (123_456, "$1,234.56"),
        (1_000_000_000, "$10,000,000.00"),
        (-1_999, "-$19.99"),
    ],
)
def test_amounts_are_shown_exactly_to_the_cent(cents: int, shown: str) -> None:
    assert dollars(cents) == shown


def test_the_offer_document_discloses_every_truth_in_lending_figure_and_the_schedule() -> None:
    notice = offer_document(LOAN, DISCLOSURE, date(2026, 12, 31))
    d = DISCLOSURE
    assert notice.kind is NoticeKind.OFFER
    body = notice.body
    for line in (
        f"Annual percentage rate (the cost of your credit as a yearly rate): "
        f"{d.annual_percentage_rate}%",
        f"Finance charge (the dollar amount the credit will cost you): "
        f"{dollars(d.finance_charge_cents)}",
        f"Amount financed (the amount of credit provided to you or on your behalf): "
        f"{dollars(d.amount_financed_cents)}",
        f"payments as scheduled): {dollars(d.total_of_payments_cents)}",
        f"Disclosure version: {d.disclosure_version}",
        "you will not have to pay a penalty",
    ):
        assert line in body, line
    level, final = d.payment_schedule[0], d.payment_schedule[-1]
    assert level.amount_cents != final.amount_cents  # the schedule below has two lines
    assert (
        f"- Payments 1 to 11 (11 payments): {dollars(level.amount_cents)} each, monthly from "
        f"2027-01-31 to {d.payment_schedule[10].due_date}"
    ) in body
    assert f"- Payment 12: {dollars(final.amount_cents)} due {final.due_date}" in body
    # the figures read back add up: the finance charge is total of payments less financed
    assert d.finance_charge_cents == d.total_of_payments_cents - d.amount_financed_cents


def test_a_schedule_of_uneven_payments_lists_each_run() -> None:
    schedule = (
        installment(1, 10_000, FIRST_DUE),
        installment(2, 10_000, FIRST_DUE + timedelta(days=28)),
        installment(3, 10_001, FIRST_DUE + timedelta(days=59)),
    )
    body = offer_document(LOAN, replace(DISCLOSURE, payment_schedule=schedule), FIRST_DUE).body
    assert "- Payments 1 to 2 (2 payments): $100.00 each" in body
    assert "- Payment 3: $100.01 due" in body


def test_a_receipt_shows_how_the_payment_was_applied_and_what_is_left() -> None:
    notice = payment_receipt(LOAN, 50_000, 0, 1_233, 48_767, date(2027, 2, 1), 71_233, False)
    assert notice.kind is NoticeKind.RECEIPT
    for line in (
        "Amount paid: $500.00",
        "- to fees: $0.00",
        "- to interest: $12.33",
        "- to principal: $487.67",
        "Principal outstanding after this payment: $712.33",
        "on 2027-02-01",
    ):
        assert line in notice.body, line
    paid_off = payment_receipt(LOAN, 71_500, 0, 267, 71_233, date(2027, 3, 1), 0, True)
    assert "paid in full and closed" in paid_off.body


def test_a_receipt_whose_parts_do_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="add up"):
        payment_receipt(LOAN, 50_000, 0, 1_233, 48_766, date(2027, 2, 1), 71_233, False)


def test_a_late_notice_names_the_installment_its_days_late_and_what_is_past_due() -> None:
    missed = installment(2, 10_830, date(2027, 2, 28))
    notice = late_notice(LOAN, missed, 21_660, date(2027, 3, 10))
    assert notice.kind is NoticeKind.LATE_NOTICE
    assert "payment 2" in notice.body and "due on 2027-02-28 (10 days ago)" in notice.body
    assert "Installment amount: $108.30" in notice.body
    assert "Total past due as of 2027-03-10: $216.60" in notice.body
    assert "dispute" in notice.body  # the way to contest the balance (USE-8)
    with pytest.raises(ValueError, match="not past due"):
        late_notice(LOAN, missed, 0, date(2027, 2, 28))


def test_a_payment_due_reminder_names_the_installment_its_date_and_amount() -> None:
    due = installment(3, 10_830, date(2027, 3, 31))
    notice = payment_due_reminder(LOAN, due, date(2027, 3, 26))
    assert notice.kind is NoticeKind.PAYMENT_DUE
    assert "Payment 3" in notice.body and "due on 2027-03-31 (in 5 days)" in notice.body
    assert "Amount due: $108.30" in notice.body
    assert "(today)" in payment_due_reminder(LOAN, due, date(2027, 3, 31)).body
    assert "(in 1 day)" in payment_due_reminder(LOAN, due, date(2027, 3, 30)).body
    with pytest.raises(ValueError, match="fell due"):
        payment_due_reminder(LOAN, due, date(2027, 4, 1))


def test_titles_name_no_one_and_no_figure_and_bodies_are_sealed() -> None:
    missed = installment(1, 10_830, FIRST_DUE)
    every = [
        offer_document(LOAN, DISCLOSURE, FIRST_DUE),
        payment_receipt(LOAN, 100, 0, 0, 100, FIRST_DUE, 0, True),
        late_notice(LOAN, missed, 10_830, FIRST_DUE + timedelta(days=1)),
        payment_due_reminder(LOAN, missed, FIRST_DUE),
    ]
    assert {n.kind for n in every} == set(NoticeKind) - {NoticeKind.ADVERSE_ACTION}
    for notice in every:
        assert not re.search(r"[0-9$]", notice.title), notice.title
        assert str(LOAN).split("-")[0].upper() not in notice.title
    # the body is sealed with the borrower's key; the title and kind are not personal
    assert set(personal_fields(CustomerNoticeRequested)) == {"body"}


def test_notice_ids_make_a_repeat_the_same_notice_and_every_other_notice_distinct() -> None:
    other = uuid.uuid4()
    assert offer_notice_id(LOAN) == offer_notice_id(LOAN) != offer_notice_id(other)
    assert receipt_notice_id(LOAN, "pay-1") == receipt_notice_id(LOAN, "pay-1")
    assert receipt_notice_id(LOAN, "pay-1") != receipt_notice_id(LOAN, "pay-2")
    assert late_notice_id(LOAN, 1) != late_notice_id(LOAN, 2) != payment_due_notice_id(LOAN, 2)
    assert payment_due_notice_id(LOAN, 3) == payment_due_notice_id(LOAN, 3)
    requested = payment_due_reminder(LOAN, installment(3, 100, FIRST_DUE), FIRST_DUE).requested(
        payment_due_notice_id(LOAN, 3)
    )
    assert requested.notice_id == payment_due_notice_id(LOAN, 3)


SCHEDULE = tuple(installment(n, 10_000, date(2027, n, 15)) for n in range(1, 5))


def test_a_reminder_is_due_within_the_lead_time_once_and_not_for_a_paid_installment() -> None:
    jan15 = SCHEDULE[0].due_date
    assert reminders_due(SCHEDULE, 0, 0, jan15 - timedelta(days=6), 5) == []  # too early
    assert reminders_due(SCHEDULE, 0, 0, jan15 - timedelta(days=5), 5) == [SCHEDULE[0]]
    assert reminders_due(SCHEDULE, 0, 0, jan15, 5) == [SCHEDULE[0]]  # the due date itself
    assert reminders_due(SCHEDULE, 1, 0, jan15 - timedelta(days=2), 5) == []  # reminded before
    assert reminders_due(SCHEDULE, 0, 0, jan15 + timedelta(days=1), 5) == []  # past due: late
    # paid ahead: the first installment is covered, the second is not yet in its window
    assert reminders_due(SCHEDULE, 0, 10_000, jan15 - timedelta(days=1), 5) == []
    # a partly paid installment is still due
    feb = SCHEDULE[1].due_date
    assert reminders_due(SCHEDULE, 1, 15_000, feb - timedelta(days=3), 5) == [SCHEDULE[1]]
    with pytest.raises(ValueError):
        reminders_due(SCHEDULE, 0, 0, jan15, -1)


def test_past_due_is_what_fell_due_before_today_less_what_was_paid() -> None:
    assert past_due_cents(SCHEDULE, 0, date(2027, 1, 15)) == 0  # due today: not past due
    assert past_due_cents(SCHEDULE, 0, date(2027, 2, 16)) == 20_000
    assert past_due_cents(SCHEDULE, 15_000, date(2027, 2, 16)) == 5_000
    assert past_due_cents(SCHEDULE, 40_000, date(2027, 5, 1)) == 0


@pytest.mark.obligation("USE-8")
def test_a_balance_dispute_opens_a_case_on_a_loan_with_a_balance_only() -> None:
    for state in LoanState:
        if state in DISPUTABLE:
            opened = open_dispute(state, LOAN, "LD-0123456789ABCDEF", "  Charged twice  ")
            assert opened.reason == "Charged twice"
            assert opened.case_reference == "LD-0123456789ABCDEF"
            assert opened.case_digest == dispute_case_digest("ld-0123456789abcdef ")
        else:
            with pytest.raises(NotDisputable):
                open_dispute(state, LOAN, "LD-0123456789ABCDEF", "Charged twice")
    assert LoanState.OFFERED not in DISPUTABLE and LoanState.CHARGED_OFF in DISPUTABLE
    with pytest.raises(ValueError, match="reason"):
        open_dispute(LoanState.ACTIVE, LOAN, "LD-0123456789ABCDEF", "   ")
    # the reason and the reference are sealed; the sharing gateway checks a case by the
    # reference's digest, which stays readable
    assert set(personal_fields(BalanceDisputeOpened)) == {"case_reference", "reason"}
    assert dispute_case_digest("LD-0123456789ABCDEF") == (
        hashlib.sha256(b"LD-0123456789ABCDEF").hexdigest()
    )


def test_a_v1_dispute_event_reads_as_v2_with_its_reference_digest() -> None:
    """v1 kept the reference readable and had no digest: a v1 record upcasts to v2 with the
    digest the sharing gateway keys the case by."""
    v1 = {"loan_id": str(LOAN), "case_reference": "LD-0123456789ABCDEF", "reason": "x"}
    v2 = REGISTRY.upcast("loans.BalanceDisputeOpened", 1, v1)
    assert v2["case_digest"] == dispute_case_digest("LD-0123456789ABCDEF")
    assert BalanceDisputeOpened.model_validate(v2).case_reference == "LD-0123456789ABCDEF"
