"""The loan communications servicing sends (USE-10): the offer document with its
Truth-in-Lending disclosure, a receipt for each payment applied, a late notice for each
installment missed, a reminder before each due date. Pure: each renders its plain-text
body from the figures it tells of and returns the `loans.CustomerNoticeRequested` to append
in the same transaction as the event it tells of.

Each notice's id is derived (uuid5) from what it is about, so a request appended twice is
delivered once by the notification path (incident's notices), which keys on it.

Titles name the matter, never the person or a figure: they are not sealed. Amounts are
rendered exactly from integer cents through `Decimal` (no float ever touches money).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.obligations import enforces
from expensura_loans.assessment.domain import CREDITOR
from expensura_loans.servicing.domain import ScheduledPayment, TruthInLendingDisclosure

OFFER_TITLE = "Your loan offer and its Truth-in-Lending disclosure"
RECEIPT_TITLE = "Your loan payment receipt"
LATE_NOTICE_TITLE = "Your loan payment is late"
PAYMENT_DUE_TITLE = "Your loan payment is coming due"


def dollars(cents: int) -> str:
    """Integer cents as the borrower reads them, exactly: 123456 → "$1,234.56"."""
    amount = Decimal(cents).scaleb(-2)  # exact: a shift of the exponent, no division
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def percent(rate: Decimal) -> str:
    return f"{rate.quantize(Decimal('0.01'))}%"


def _ref(loan_id: UUID) -> str:
    """The loan as the borrower's notices name it: a short reference, not a name."""
    return str(loan_id).split("-")[0].upper()


# --- the notice ids (idempotency) --------------------------------------------------------------


def offer_notice_id(loan_id: UUID) -> UUID:
    return uuid5(NAMESPACE_URL, f"offer-document:{loan_id}")


def receipt_notice_id(loan_id: UUID, idempotency_key: str) -> UUID:
    """One receipt per payment: a retry with the same key is the same payment."""
    return uuid5(NAMESPACE_URL, f"receipt:{loan_id}:{idempotency_key}")


def late_notice_id(loan_id: UUID, installment_number: int) -> UUID:
    return uuid5(NAMESPACE_URL, f"late-notice:{loan_id}:{installment_number}")


def payment_due_notice_id(loan_id: UUID, installment_number: int) -> UUID:
    return uuid5(NAMESPACE_URL, f"payment-due:{loan_id}:{installment_number}")


# --- the renderers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    title: str
    body: str

    def requested(self, notice_id: UUID) -> CustomerNoticeRequested:
        return CustomerNoticeRequested(
            notice_id=notice_id, kind=self.kind, title=self.title, body=self.body
        )


def _letter(*paragraphs: str | Sequence[str]) -> str:
    lines = ["Dear borrower,", ""]
    for paragraph in paragraphs:
        lines += [paragraph] if isinstance(paragraph, str) else list(paragraph)
        lines.append("")
    lines += [CREDITOR, ""]
    return "\n".join(lines)


def _schedule_lines(schedule: Sequence[ScheduledPayment]) -> list[str]:
    """Reg Z §1026.18(g): the number, amounts and timing of payments. A level run is one
    line (as the regulation's model forms group them), then each payment that differs."""
    out: list[str] = []
    ordered = sorted(schedule, key=lambda p: p.number)
    start = 0
    while start < len(ordered):
        end = start
        amount = ordered[start].amount_cents
        while end + 1 < len(ordered) and ordered[end + 1].amount_cents == amount:
            end += 1
        first, last = ordered[start], ordered[end]
        if start == end:
            out.append(f"- Payment {first.number}: {dollars(amount)} due {first.due_date}")
        else:
            out.append(
                f"- Payments {first.number} to {last.number} ({end - start + 1} payments): "
                f"{dollars(amount)} each, monthly from {first.due_date} to {last.due_date}"
            )
        start = end + 1
    return out


@enforces("USE-10", "USE-3")
def offer_document(loan_id: UUID, disclosure: TruthInLendingDisclosure, offered_on: date) -> Notice:
    """The offer with its Truth-in-Lending disclosure (Reg Z §1026.18), figure by figure as
    the borrower accepts it, and the disclosure's version an acceptance names."""
    d = disclosure
    body = _letter(
        f"We are pleased to offer you a loan (reference {_ref(loan_id)}), offered on "
        f"{offered_on}. These are its terms; accept them in the app before the offer lapses.",
        [
            "TRUTH-IN-LENDING DISCLOSURES",
            f"Annual percentage rate (the cost of your credit as a yearly rate): "
            f"{percent(d.annual_percentage_rate)}",
            f"Finance charge (the dollar amount the credit will cost you): "
            f"{dollars(d.finance_charge_cents)}",
            f"Amount financed (the amount of credit provided to you or on your behalf): "
            f"{dollars(d.amount_financed_cents)}",
            f"Total of payments (the amount you will have paid after you have made all "
            f"payments as scheduled): {dollars(d.total_of_payments_cents)}",
        ],
        ["Your payment schedule:", *_schedule_lines(d.payment_schedule)],
        [
            f"Prepaid finance charge (withheld from the amount disbursed): "
            f"{dollars(d.prepaid_finance_charge_cents)}",
            "Prepayment: if you pay off early, you will not have to pay a penalty.",
            "Interest accrues daily on the principal outstanding; a payment pays fees, then "
            "interest, then principal.",
        ],
        f"Disclosure version: {d.disclosure_version}",
    )
    return Notice(NoticeKind.OFFER, OFFER_TITLE, body)


@enforces("USE-10")
def payment_receipt(
    loan_id: UUID,
    amount_cents: int,
    to_fees_cents: int,
    to_interest_cents: int,
    to_principal_cents: int,
    paid_on: date,
    principal_outstanding_cents: int,
    paid_off: bool,
) -> Notice:
    """What a payment paid: its parts, in the order they were applied, and what is left."""
    if to_fees_cents + to_interest_cents + to_principal_cents != amount_cents:
        raise ValueError("a receipt's parts must add up to the payment")
    after = (
        "Your loan is paid in full and closed. Thank you."
        if paid_off
        else f"Principal outstanding after this payment: {dollars(principal_outstanding_cents)}"
    )
    body = _letter(
        f"We received your payment on loan {_ref(loan_id)} on {paid_on}.",
        [
            f"Amount paid: {dollars(amount_cents)}",
            f"- to fees: {dollars(to_fees_cents)}",
            f"- to interest: {dollars(to_interest_cents)}",
            f"- to principal: {dollars(to_principal_cents)}",
        ],
        after,
    )
    return Notice(NoticeKind.RECEIPT, RECEIPT_TITLE, body)


@enforces("USE-10")
def late_notice(
    loan_id: UUID, installment: ScheduledPayment, past_due_cents: int, today: date
) -> Notice:
    """An installment unpaid after its due date: which, since when, and what is past due."""
    days = (today - installment.due_date).days
    if days <= 0:
        raise ValueError(f"installment {installment.number} is not past due on {today}")
    body = _letter(
        f"We have not received payment {installment.number} of your loan "
        f"{_ref(loan_id)}, due on {installment.due_date} ({days} days ago).",
        [
            f"Installment amount: {dollars(installment.amount_cents)}",
            f"Total past due as of {today}: {dollars(past_due_cents)}",
        ],
        "Please pay as soon as you can in the app. A loan 30 days or more past due is "
        "reported to the credit bureaus as delinquent, and one 120 days past due is "
        "charged off. If you believe your balance is wrong, you can dispute it in the app.",
    )
    return Notice(NoticeKind.LATE_NOTICE, LATE_NOTICE_TITLE, body)


@enforces("USE-10")
def payment_due_reminder(loan_id: UUID, installment: ScheduledPayment, today: date) -> Notice:
    days = (installment.due_date - today).days
    if days < 0:
        raise ValueError(f"installment {installment.number} fell due before {today}")
    when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    body = _letter(
        f"Payment {installment.number} of your loan {_ref(loan_id)} is due on "
        f"{installment.due_date} ({when}).",
        f"Amount due: {dollars(installment.amount_cents)}",
        "If you have already paid it, please disregard this reminder.",
    )
    return Notice(NoticeKind.PAYMENT_DUE, PAYMENT_DUE_TITLE, body)


def past_due_cents(schedule: Sequence[ScheduledPayment], paid_cents: int, today: date) -> int:
    """The installments due before `today` less what was paid (oldest first)."""
    due = sum(p.amount_cents for p in schedule if p.due_date < today)
    return max(0, due - paid_cents)


def reminders_due(
    schedule: Sequence[ScheduledPayment],
    reminded_through: int,
    paid_cents: int,
    today: date,
    lead_days: int,
) -> list[ScheduledPayment]:
    """The installments to remind of today: due within `lead_days` (and not yet past due),
    not reminded before (numbers after `reminded_through`), and not already paid."""
    if lead_days < 0:
        raise ValueError("the reminder's lead time cannot be negative")
    out: list[ScheduledPayment] = []
    covered = 0
    for installment in sorted(schedule, key=lambda p: p.number):
        covered += installment.amount_cents
        if installment.number <= reminded_through or covered <= paid_cents:
            continue
        if 0 <= (installment.due_date - today).days <= lead_days:
            out.append(installment)
    return out
