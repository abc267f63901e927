"""A loan's life after its application (USE-3). Pure rules: no I/O, no clock.

- The offer's Truth-in-Lending disclosure (Reg Z §1026.18): amount financed, finance charge,
  annual percentage rate (actuarial method, Appendix J), total of payments, payment schedule.
- The lifecycle as a declared table, `TRANSITIONS`: anything not in it is refused.
- Delinquency: days past due from the oldest unpaid installment, and its bucket.
- Payment application: fees, then accrued interest, then principal; nothing beyond payoff.

Money is integer cents; rates are `Decimal` fractions (0.065 is 6.5 %) except the disclosed
annual percentage rate, which is in percent with two decimals as the borrower reads it.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from types import MappingProxyType
from typing import cast
from uuid import UUID

from expensura_events.catalog.loans_servicing import (
    BalanceDisputeOpened,
    DelinquentBucketName,
    LoanBecameDelinquent,
    LoanChargedOff,
    LoanClosed,
    LoanDisbursed,
    LoanOffered,
    LoanPaidOff,
    OfferAccepted,
    PaymentMissed,
    PaymentReceived,
    dispute_case_digest,
)
from expensura_events.envelope import DomainEvent
from expensura_events.obligations import enforces
from expensura_loans.applications.domain import InvalidTerms

# The form the disclosure is rendered from: an acceptance names the version it was shown.
DISCLOSURE_VERSION = "reg-z-1026.18/v1"
CHARGE_OFF_DAYS_PAST_DUE = 120
DAYS_IN_YEAR = 365  # daily accrual, actual/365

_CENT = Decimal(1)
_HUNDREDTH = Decimal("0.01")
_PRECISION = 40  # rate/12 does not terminate; 40 digits keep every cent exact


# --- the lifecycle ---------------------------------------------------------------------------


class LoanState(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    DELINQUENT = "delinquent"
    PAID_OFF = "paid-off"
    CHARGED_OFF = "charged-off"
    CLOSED = "closed"
    OFFER_EXPIRED = "offer-expired"
    OFFER_DECLINED = "offer-declined"


class LoanAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"
    DISBURSE = "disburse"
    PAY = "pay"
    MISS = "miss"
    PAY_OFF = "pay-off"
    CHARGE_OFF = "charge-off"
    CLOSE = "close"


_S, _A = LoanState, LoanAction
TRANSITIONS: Mapping[tuple[LoanState, LoanAction], LoanState] = MappingProxyType(
    {
        (_S.OFFERED, _A.ACCEPT): _S.ACCEPTED,
        (_S.OFFERED, _A.DECLINE): _S.OFFER_DECLINED,
        (_S.OFFERED, _A.EXPIRE): _S.OFFER_EXPIRED,
        (_S.ACCEPTED, _A.DISBURSE): _S.ACTIVE,
        (_S.ACTIVE, _A.PAY): _S.ACTIVE,
        (_S.ACTIVE, _A.MISS): _S.DELINQUENT,
        (_S.ACTIVE, _A.PAY_OFF): _S.PAID_OFF,
        # Guarded: a payment cures only when it brings the loan current; until then the
        # loan stays delinquent.
        (_S.DELINQUENT, _A.PAY): _S.ACTIVE,
        # A further installment missed while delinquent: still delinquent, a later bucket.
        (_S.DELINQUENT, _A.MISS): _S.DELINQUENT,
        (_S.DELINQUENT, _A.PAY_OFF): _S.PAID_OFF,
        # Guarded: only at CHARGE_OFF_DAYS_PAST_DUE days past due or more.
        (_S.DELINQUENT, _A.CHARGE_OFF): _S.CHARGED_OFF,
        (_S.PAID_OFF, _A.CLOSE): _S.CLOSED,
        (_S.CHARGED_OFF, _A.CLOSE): _S.CLOSED,
    }
)
# The guarded moves depend on how far behind the loan is after the action.
GUARDED = frozenset({(_S.DELINQUENT, _A.PAY), (_S.DELINQUENT, _A.CHARGE_OFF)})


class IllegalTransition(Exception):
    """The lifecycle has no such move from this state (or its guard does not hold)."""

    def __init__(self, state: LoanState, action: LoanAction, why: str = "") -> None:
        super().__init__(f"a loan {state} cannot {action}" + (f": {why}" if why else ""))
        self.state = state
        self.action = action


@enforces("USE-3")
def transition(
    state: LoanState, action: LoanAction, *, days_past_due: int | None = None
) -> LoanState:
    """The state after `action`, from the table. A guarded move needs `days_past_due` as it
    stands after the action (so a payment's own effect counts toward the cure)."""
    try:
        after = TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action) from None
    if (state, action) not in GUARDED:
        return after
    if days_past_due is None:
        raise TypeError(f"{action} from {state} depends on days past due")
    if action is LoanAction.PAY:
        return after if days_past_due == 0 else LoanState.DELINQUENT
    if days_past_due < CHARGE_OFF_DAYS_PAST_DUE:
        raise IllegalTransition(
            state, action, f"{days_past_due} days past due, fewer than {CHARGE_OFF_DAYS_PAST_DUE}"
        )
    return after


# --- the Truth-in-Lending disclosure ---------------------------------------------------------


@dataclass(frozen=True)
class ScheduledPayment:
    number: int
    amount_cents: int
    due_date: date


@dataclass(frozen=True)
class TruthInLendingDisclosure:
    """Reg Z §1026.18's figures. The finance charge is the total of payments less the amount
    financed; the amount financed is the principal less the prepaid finance charge."""

    principal_cents: int
    prepaid_finance_charge_cents: int
    amount_financed_cents: int
    finance_charge_cents: int
    annual_percentage_rate: Decimal  # percent, two decimals
    total_of_payments_cents: int
    payment_schedule: tuple[ScheduledPayment, ...]
    disclosure_version: str = DISCLOSURE_VERSION


def _round_cents(amount: Decimal) -> int:
    return int(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


def monthly_payment_cents(principal_cents: int, annual_rate: Decimal, term_months: int) -> int:
    """The level payment that amortises the principal: P*r / (1 - (1+r)^-n), r = rate/12."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if annual_rate == 0:
            return _round_cents(Decimal(principal_cents) / term_months)
        r = annual_rate / 12
        return _round_cents(Decimal(principal_cents) * r / (1 - (1 + r) ** -term_months))


def add_months(start: date, months: int) -> date:
    """The same day `months` later, clipped to that month's end (Jan 31 → Feb 28 or 29).
    Counted from `start` each time, so Jan 31 → Feb 28 → Mar 31, never drifting to the 28th."""
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day)


def _schedule(
    principal_cents: int, annual_rate: Decimal, term_months: int, first_due: date
) -> tuple[ScheduledPayment, ...]:
    """Each month: interest = balance * rate/12, half-up to the cent; the payment pays it,
    the rest goes to principal. The last payment is whatever repays the principal exactly."""
    level = monthly_payment_cents(principal_cents, annual_rate, term_months)
    balance = principal_cents
    out: list[ScheduledPayment] = []
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        for number in range(1, term_months + 1):
            interest = _round_cents(Decimal(balance) * annual_rate / 12)
            payment = balance + interest if number == term_months else level
            balance -= payment - interest
            out.append(ScheduledPayment(number, payment, add_months(first_due, number - 1)))
    # Only a few cents over many months round to this: nothing a schedule could disclose.
    if any(p.amount_cents <= 0 for p in out):
        raise InvalidTerms("the principal is too small to amortise over this term")
    return tuple(out)


def _present_value(payments: Sequence[int], monthly_rate: Decimal) -> Decimal:
    """Σ payment_k / (1+i)^k, payment k one unit period (a month) after the previous."""
    v = 1 / (1 + monthly_rate)
    total = Decimal(0)
    for amount in reversed(payments):  # Horner: v(a1 + v(a2 + … v(an)))
        total = v * (amount + total)
    return total


def actuarial_apr(amount_financed_cents: int, payments: Sequence[int]) -> Decimal:
    """Reg Z Appendix J, actuarial method, monthly unit period, the first payment one full
    period after consummation: the rate i at which the payments' present value equals the
    amount financed; APR = 12·i, in percent, half-up to 1/100 of a point (well inside
    §1026.22's 1/8 point tolerance). Bisection: the present value falls as i rises."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if sum(payments) <= amount_financed_cents:
            return Decimal("0.00")
        low, high = Decimal(0), Decimal("0.01")
        while _present_value(payments, high) > amount_financed_cents:
            low, high = high, high * 2
        while high - low > Decimal("1e-14"):
            mid = (low + high) / 2
            if _present_value(payments, mid) > amount_financed_cents:
                low = mid
            else:
                high = mid
        return ((low + high) / 2 * 12 * 100).quantize(_HUNDREDTH, rounding=ROUND_HALF_UP)


@enforces("USE-3")
def disclose(
    principal_cents: int,
    annual_rate: Decimal,
    term_months: int,
    first_due: date,
    origination_fee_cents: int = 0,
) -> TruthInLendingDisclosure:
    """The disclosure of a closed-end, level-payment loan, its origination fee a prepaid
    finance charge (withheld from what is disbursed)."""
    if principal_cents <= 0:
        raise InvalidTerms("the principal must be positive")
    if term_months <= 0:
        raise InvalidTerms("the term must be at least one month")
    if not 0 <= annual_rate < 1:
        raise InvalidTerms("the annual rate is a fraction: 0.065 for 6.5 %")
    if not 0 <= origination_fee_cents < principal_cents:
        raise InvalidTerms("the origination fee must be less than the principal")
    schedule = _schedule(principal_cents, annual_rate, term_months, first_due)
    amount_financed = principal_cents - origination_fee_cents
    total_of_payments = sum(p.amount_cents for p in schedule)
    return TruthInLendingDisclosure(
        principal_cents=principal_cents,
        prepaid_finance_charge_cents=origination_fee_cents,
        amount_financed_cents=amount_financed,
        finance_charge_cents=total_of_payments - amount_financed,
        annual_percentage_rate=actuarial_apr(amount_financed, [p.amount_cents for p in schedule]),
        total_of_payments_cents=total_of_payments,
        payment_schedule=schedule,
    )


# --- delinquency -----------------------------------------------------------------------------


class DelinquencyBucket(StrEnum):
    CURRENT = "current"
    DAYS_1_29 = "1-29"
    DAYS_30_59 = "30-59"
    DAYS_60_89 = "60-89"
    DAYS_90_119 = "90-119"
    DAYS_120_PLUS = "120+"


_BUCKET_FLOORS = (
    (120, DelinquencyBucket.DAYS_120_PLUS),
    (90, DelinquencyBucket.DAYS_90_119),
    (60, DelinquencyBucket.DAYS_60_89),
    (30, DelinquencyBucket.DAYS_30_59),
    (1, DelinquencyBucket.DAYS_1_29),
    (0, DelinquencyBucket.CURRENT),
)


def bucket(days_past_due: int) -> DelinquencyBucket:
    if days_past_due < 0:
        raise ValueError("days past due cannot be negative")
    return next(b for floor, b in _BUCKET_FLOORS if days_past_due >= floor)


def days_past_due(
    schedule: Sequence[ScheduledPayment], payments_applied_cents: int, today: date
) -> int:
    """Days since the oldest installment not fully paid fell due (0 if none is overdue).
    Payments fill installments oldest first; a partly paid installment is unpaid."""
    covered = 0
    for installment in sorted(schedule, key=lambda p: p.number):
        covered += installment.amount_cents
        if covered > payments_applied_cents:
            return max(0, (today - installment.due_date).days)
    return 0


# --- payments --------------------------------------------------------------------------------


class Overpayment(Exception):
    """A payment beyond the payoff amount: refused, not silently kept."""


class InvalidPayment(ValueError):
    pass


@dataclass(frozen=True)
class LoanBalance:
    """What the borrower owes: fees and interest accrued up to `accrued_through`, principal.
    Interest accrues daily on the principal from then on, actual/365."""

    principal_cents: int
    annual_rate: Decimal
    accrued_through: date
    accrued_interest_cents: int = 0
    fees_cents: int = 0

    def interest_to(self, on: date) -> int:
        if on < self.accrued_through:
            raise InvalidPayment(f"interest is already accrued through {self.accrued_through}")
        days = (on - self.accrued_through).days
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            daily = Decimal(self.principal_cents) * self.annual_rate * days / DAYS_IN_YEAR
        return self.accrued_interest_cents + _round_cents(daily)

    def payoff_cents(self, on: date) -> int:
        """Remaining principal + interest accrued to `on` (+ any unpaid fees)."""
        return self.fees_cents + self.interest_to(on) + self.principal_cents


@dataclass(frozen=True)
class PaymentApplication:
    to_fees_cents: int
    to_interest_cents: int
    to_principal_cents: int
    balance_after: LoanBalance

    @property
    def paid_off(self) -> bool:
        b = self.balance_after
        return b.principal_cents == b.accrued_interest_cents == b.fees_cents == 0


@enforces("USE-3")
def apply_payment(balance: LoanBalance, amount_cents: int, paid_on: date) -> PaymentApplication:
    """Fees first, then interest accrued to `paid_on`, then principal."""
    if amount_cents <= 0:
        raise InvalidPayment("a payment must be positive")
    interest = balance.interest_to(paid_on)
    payoff = balance.fees_cents + interest + balance.principal_cents
    if amount_cents > payoff:
        raise Overpayment(f"{amount_cents} cents exceeds the payoff amount of {payoff} cents")
    to_fees = min(amount_cents, balance.fees_cents)
    to_interest = min(amount_cents - to_fees, interest)
    to_principal = amount_cents - to_fees - to_interest
    after = replace(
        balance,
        principal_cents=balance.principal_cents - to_principal,
        accrued_through=paid_on,
        accrued_interest_cents=interest - to_interest,
        fees_cents=balance.fees_cents - to_fees,
    )
    return PaymentApplication(to_fees, to_interest, to_principal, after)


# --- the lifecycle's events ------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A move of the lifecycle: the state it leads to and the events that record it."""

    state: LoanState
    events: tuple[DomainEvent, ...]


class DisclosureNotShown(Exception):
    """An acceptance naming another disclosure than the one offered: the borrower did not
    accept these terms."""


def offer(loan_id: UUID, application_id: UUID, disclosure: TruthInLendingDisclosure) -> Step:
    schedule = disclosure.payment_schedule
    return Step(
        LoanState.OFFERED,
        (
            LoanOffered(
                loan_id=loan_id,
                application_id=application_id,
                amount_financed_cents=disclosure.amount_financed_cents,
                prepaid_finance_charge_cents=disclosure.prepaid_finance_charge_cents,
                finance_charge_cents=disclosure.finance_charge_cents,
                annual_percentage_rate=disclosure.annual_percentage_rate,
                total_of_payments_cents=disclosure.total_of_payments_cents,
                number_of_payments=len(schedule),
                regular_payment_cents=schedule[0].amount_cents,
                final_payment_cents=schedule[-1].amount_cents,
                first_due_date=schedule[0].due_date,
                final_due_date=schedule[-1].due_date,
                disclosure_version=disclosure.disclosure_version,
            ),
        ),
    )


def accept(state: LoanState, offered: LoanOffered, shown_version: str) -> Step:
    if shown_version != offered.disclosure_version:
        raise DisclosureNotShown(
            f"offered with disclosure {offered.disclosure_version}, accepted {shown_version}"
        )
    after = transition(state, LoanAction.ACCEPT)
    return Step(after, (OfferAccepted(loan_id=offered.loan_id, disclosure_version=shown_version),))


def disburse(
    state: LoanState, loan_id: UUID, disclosure: TruthInLendingDisclosure, on: date
) -> Step:
    """The borrower receives the amount financed: the prepaid finance charge is withheld."""
    after = transition(state, LoanAction.DISBURSE)
    event = LoanDisbursed(
        loan_id=loan_id, amount_cents=disclosure.amount_financed_cents, disbursed_on=on
    )
    return Step(after, (event,))


@dataclass(frozen=True)
class PaymentOutcome:
    step: Step
    application: PaymentApplication


def receive_payment(
    state: LoanState,
    loan_id: UUID,
    balance: LoanBalance,
    schedule: Sequence[ScheduledPayment],
    paid_before_cents: int,
    amount_cents: int,
    paid_on: date,
    idempotency_key: str,
) -> PaymentOutcome:
    """A payment applied; a payment of the whole payoff pays the loan off, any other keeps it
    active or, if it brings a delinquent loan current, cures it."""
    application = apply_payment(balance, amount_cents, paid_on)
    received = PaymentReceived(
        loan_id=loan_id,
        idempotency_key=idempotency_key,
        amount_cents=amount_cents,
        to_fees_cents=application.to_fees_cents,
        to_interest_cents=application.to_interest_cents,
        to_principal_cents=application.to_principal_cents,
        paid_on=paid_on,
    )
    if application.paid_off:
        after = transition(state, LoanAction.PAY_OFF)
        return PaymentOutcome(
            Step(after, (received, LoanPaidOff(loan_id=loan_id, paid_off_on=paid_on))),
            application,
        )
    behind = days_past_due(schedule, paid_before_cents + amount_cents, paid_on)
    after = transition(state, LoanAction.PAY, days_past_due=behind)
    return PaymentOutcome(Step(after, (received,)), application)


def miss_payment(
    state: LoanState, loan_id: UUID, installment: ScheduledPayment, today: date
) -> Step:
    """An installment unpaid after its due date. The loan becomes delinquent (recorded with
    its bucket) if it was not already."""
    behind = (today - installment.due_date).days
    if behind <= 0:
        raise InvalidPayment(f"installment {installment.number} is not yet past due")
    after = transition(state, LoanAction.MISS)
    missed = PaymentMissed(
        loan_id=loan_id, installment_number=installment.number, due_date=installment.due_date
    )
    if state is LoanState.DELINQUENT:
        return Step(after, (missed,))
    # The catalog spells the delinquent buckets as a Literal of the same values (tested).
    named = cast(DelinquentBucketName, bucket(behind).value)
    became = LoanBecameDelinquent(loan_id=loan_id, bucket=named)
    return Step(after, (missed, became))


def charge_off(
    state: LoanState, loan_id: UUID, balance: LoanBalance, days_past_due: int, on: date
) -> Step:
    after = transition(state, LoanAction.CHARGE_OFF, days_past_due=days_past_due)
    event = LoanChargedOff(
        loan_id=loan_id,
        principal_charged_off_cents=balance.principal_cents,
        days_past_due=days_past_due,
        charged_off_on=on,
    )
    return Step(after, (event,))


def close(state: LoanState, loan_id: UUID, on: date) -> Step:
    return Step(transition(state, LoanAction.CLOSE), (LoanClosed(loan_id=loan_id, closed_on=on),))


# --- balance disputes (USE-8) ----------------------------------------------------------------

# A loan with a balance, now or at its end: an offer has none yet. A charged-off loan is the
# one a collection agency pursues, so it is the one most often disputed.
DISPUTABLE = frozenset(
    {
        LoanState.ACTIVE,
        LoanState.DELINQUENT,
        LoanState.PAID_OFF,
        LoanState.CHARGED_OFF,
        LoanState.CLOSED,
    }
)
MAX_DISPUTE_REASON = 2000


class NotDisputable(Exception):
    """A loan without a balance to dispute (an offer, or one never taken)."""


@enforces("USE-8")
def open_dispute(
    state: LoanState, loan_id: UUID, case_reference: str, reason: str
) -> BalanceDisputeOpened:
    """The borrower disputes the balance: a case is opened, under which (and only for this
    borrower) the sharing gateway lets a dispute-resolution disclosure go."""
    if state not in DISPUTABLE:
        raise NotDisputable(f"a loan {state} has no balance to dispute")
    reason = reason.strip()
    if not 0 < len(reason) <= MAX_DISPUTE_REASON:
        raise ValueError(f"a dispute's reason is 1 to {MAX_DISPUTE_REASON} characters")
    return BalanceDisputeOpened(
        loan_id=loan_id,
        case_reference=case_reference,
        case_digest=dispute_case_digest(case_reference),
        reason=reason,
    )
