"""A loan's life in memory (USE-3): the lifecycle table, the Truth-in-Lending disclosure
against published figures, delinquency, payment application and the events recorded."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import get_args

import pytest

from expensura_events.catalog.loans_servicing import (
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
)
from expensura_events.registry import personal_fields
from expensura_loans.applications.domain import InvalidTerms
from expensura_loans.servicing.domain import (
    TRANSITIONS,
    DelinquencyBucket,
    DisclosureNotShown,
    IllegalTransition,
    LoanAction,
    LoanBalance,
    LoanState,
    Overpayment,
    ScheduledPayment,
    accept,
    apply_payment,
    bucket,
    charge_off,
    close,
    days_past_due,
    disburse,
    disclose,
    miss_payment,
    offer,
    receive_payment,
    transition,
)

pytestmark = pytest.mark.obligation("USE-3")

S, A = LoanState, LoanAction
LOAN = uuid.UUID("00000000-0000-7000-8000-000000000001")
CHARGE_OFF_AT = 120

# --- the lifecycle ---------------------------------------------------------------------------

# The lifecycle as the brief states it, written out here rather than read from the table.
EXPECTED = {
    (S.OFFERED, A.ACCEPT): S.ACCEPTED,
    (S.OFFERED, A.DECLINE): S.OFFER_DECLINED,
    (S.OFFERED, A.EXPIRE): S.OFFER_EXPIRED,
    (S.ACCEPTED, A.DISBURSE): S.ACTIVE,
    (S.ACTIVE, A.PAY): S.ACTIVE,
    (S.ACTIVE, A.MISS): S.DELINQUENT,
    (S.ACTIVE, A.PAY_OFF): S.PAID_OFF,
    (S.DELINQUENT, A.PAY): S.ACTIVE,  # when caught up
    (S.DELINQUENT, A.MISS): S.DELINQUENT,
    (S.DELINQUENT, A.PAY_OFF): S.PAID_OFF,
    (S.DELINQUENT, A.CHARGE_OFF): S.CHARGED_OFF,  # at 120+ days past due
    (S.PAID_OFF, A.CLOSE): S.CLOSED,
    (S.CHARGED_OFF, A.CLOSE): S.CLOSED,
}
ILLEGAL = [pair for pair in itertools.product(LoanState, LoanAction) if pair not in EXPECTED]


def test_the_table_is_the_lifecycle_and_nothing_more() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("state", "action"), list(EXPECTED))
def test_every_legal_move_leads_where_the_table_says(state: LoanState, action: LoanAction) -> None:
    # Days past due that satisfy the guards: caught up for a payment, 120 for a charge-off.
    behind = CHARGE_OFF_AT if action is A.CHARGE_OFF else 0
    assert transition_of(state, action, behind) is EXPECTED[(state, action)]


@pytest.mark.parametrize(("state", "action"), ILLEGAL)
def test_every_other_move_is_refused(state: LoanState, action: LoanAction) -> None:
    for behind in (None, 0, CHARGE_OFF_AT):
        with pytest.raises(IllegalTransition):
            transition_of(state, action, behind)


def test_every_state_and_action_is_considered() -> None:
    assert len(EXPECTED) + len(ILLEGAL) == len(LoanState) * len(LoanAction) == 81


def transition_of(state: LoanState, action: LoanAction, behind: int | None) -> LoanState:
    return transition(state, action, days_past_due=behind)


def test_a_payment_that_leaves_the_loan_behind_does_not_cure_it() -> None:
    assert transition_of(S.DELINQUENT, A.PAY, 1) is S.DELINQUENT
    assert transition_of(S.DELINQUENT, A.PAY, 45) is S.DELINQUENT
    assert transition_of(S.DELINQUENT, A.PAY, 0) is S.ACTIVE


def test_charge_off_waits_for_120_days_past_due() -> None:
    with pytest.raises(IllegalTransition):
        transition_of(S.DELINQUENT, A.CHARGE_OFF, 119)
    assert transition_of(S.DELINQUENT, A.CHARGE_OFF, 120) is S.CHARGED_OFF
    assert transition_of(S.DELINQUENT, A.CHARGE_OFF, 400) is S.CHARGED_OFF


@pytest.mark.parametrize("action", [A.PAY, A.CHARGE_OFF])
def test_a_guarded_move_without_days_past_due_is_not_guessed(action: LoanAction) -> None:
    with pytest.raises(TypeError):
        transition_of(S.DELINQUENT, action, None)


# --- the Truth-in-Lending disclosure ---------------------------------------------------------


def test_10000_at_6_percent_for_12_months() -> None:
    # Published: $860.66 a month, about $327.97 of interest (calculators amortise the exact,
    # unrounded payment; the cent-rounded schedule lands within a cent or two of it).
    d = disclose(1_000_000, Decimal("0.06"), 12, date(2027, 1, 15))
    amounts = [p.amount_cents for p in d.payment_schedule]
    assert amounts[:11] == [86_066] * 11
    # The last payment absorbs the rounding of the level payment: a few cents at most.
    assert abs(amounts[11] - 86_066) <= 12
    assert d.total_of_payments_cents == sum(amounts)
    assert d.amount_financed_cents == 1_000_000
    assert d.finance_charge_cents == d.total_of_payments_cents - 1_000_000
    assert abs(d.finance_charge_cents - 32_797) <= 2
    assert d.annual_percentage_rate == Decimal("6.00")


def test_the_schedule_repays_the_principal_exactly() -> None:
    # Rolled forward independently: interest on the balance at 0.5 % a month, half-up.
    d = disclose(1_000_000, Decimal("0.06"), 12, date(2027, 1, 15))
    balance = Decimal(1_000_000)
    for p in d.payment_schedule:
        interest = (balance * Decimal("0.005")).quantize(Decimal(1), rounding="ROUND_HALF_UP")
        balance = balance + interest - p.amount_cents
    assert balance == 0


def test_200000_at_6_5_percent_for_30_years() -> None:
    d = disclose(20_000_000, Decimal("0.065"), 360, date(2027, 2, 1))
    assert len(d.payment_schedule) == 360
    assert {p.amount_cents for p in d.payment_schedule[:359]} == {126_414}  # $1,264.14
    assert d.annual_percentage_rate == Decimal("6.50")
    # Published total interest for this loan: about $255,088.98 (last payment adjusting).
    assert abs(d.finance_charge_cents - 25_508_898) < 1_000


def independent_apr_percent(principal: float, fee: float, annual_rate: float, n: int) -> float:
    """Appendix J by another road: floats, the unrounded annuity payment, the annuity
    present-value formula, plain bisection."""
    r = annual_rate / 12
    payment = principal * r / (1 - (1 + r) ** -n)
    financed = principal - fee

    def present_value(i: float) -> float:
        return payment * (1 - (1 + i) ** -n) / i

    low, high = 1e-9, 1.0
    while high - low > 1e-12:
        mid = (low + high) / 2
        low, high = (mid, high) if present_value(mid) > financed else (low, mid)
    return low * 12 * 100


def test_an_origination_fee_raises_the_apr_above_the_note_rate() -> None:
    d = disclose(500_000, Decimal("0.10"), 36, date(2027, 3, 1), origination_fee_cents=25_000)
    assert d.payment_schedule[0].amount_cents == 16_134  # published: $161.34
    assert d.prepaid_finance_charge_cents == 25_000
    assert d.amount_financed_cents == 475_000
    assert d.finance_charge_cents == d.total_of_payments_cents - 475_000
    expected = independent_apr_percent(5000.0, 250.0, 0.10, 36)
    assert 13.0 < expected < 14.0  # the independent figure itself is sane
    assert d.annual_percentage_rate > Decimal("10")
    # Within rounding to 1/100 point (and far inside §1026.22's 1/8 point).
    assert abs(float(d.annual_percentage_rate) - expected) <= 0.01
    assert d.annual_percentage_rate == d.annual_percentage_rate.quantize(Decimal("0.01"))


@pytest.mark.parametrize("rate", ["0.0399", "0.06", "0.0725", "0.1", "0.2499"])
def test_without_a_fee_the_apr_is_the_note_rate(rate: str) -> None:
    d = disclose(2_500_000, Decimal(rate), 48, date(2027, 1, 1))
    assert d.annual_percentage_rate == (Decimal(rate) * 100).quantize(Decimal("0.01"))


def test_an_interest_free_loan_has_no_finance_charge() -> None:
    d = disclose(120_000, Decimal(0), 12, date(2027, 1, 1))
    assert [p.amount_cents for p in d.payment_schedule] == [10_000] * 12
    assert (d.finance_charge_cents, d.annual_percentage_rate) == (0, Decimal("0.00"))


def test_due_dates_are_monthly_and_clip_to_the_month_s_end() -> None:
    d = disclose(1_000_000, Decimal("0.06"), 14, date(2027, 1, 31))
    dates = [p.due_date for p in d.payment_schedule]
    assert dates[:4] == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]
    assert dates[12:] == [date(2028, 1, 31), date(2028, 2, 29)]  # a leap year
    assert [p.number for p in d.payment_schedule] == list(range(1, 15))


def test_the_disclosure_names_its_version() -> None:
    assert disclose(100_000, Decimal("0.05"), 6, date(2027, 1, 1)).disclosure_version


@pytest.mark.parametrize(
    ("principal", "rate", "term", "fee"),
    [
        (0, "0.05", 12, 0),
        (100_000, "0.05", 0, 0),
        (100_000, "6", 12, 0),  # 6 meant as 6 %: refused rather than lent at 600 %
        (100_000, "-0.01", 12, 0),
        (100_000, "0.05", 12, 100_000),
        (100_000, "0.05", 12, -1),
    ],
)
def test_impossible_terms_are_refused(principal: int, rate: str, term: int, fee: int) -> None:
    with pytest.raises(InvalidTerms):
        disclose(principal, Decimal(rate), term, date(2027, 1, 1), fee)


# --- delinquency -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, "current"),
        (1, "1-29"),
        (29, "1-29"),
        (30, "30-59"),
        (59, "30-59"),
        (60, "60-89"),
        (89, "60-89"),
        (90, "90-119"),
        (119, "90-119"),
        (120, "120+"),
        (1000, "120+"),
    ],
)
def test_days_past_due_fall_into_their_bucket(days: int, expected: str) -> None:
    assert bucket(days) == expected


def test_negative_days_past_due_are_refused() -> None:
    with pytest.raises(ValueError):
        bucket(-1)


SCHEDULE = (
    ScheduledPayment(1, 10_000, date(2027, 1, 10)),
    ScheduledPayment(2, 10_000, date(2027, 2, 10)),
    ScheduledPayment(3, 10_050, date(2027, 3, 10)),
)


def test_days_past_due_count_from_the_oldest_unpaid_installment() -> None:
    assert days_past_due(SCHEDULE, 0, date(2027, 1, 10)) == 0  # due today: not late
    assert days_past_due(SCHEDULE, 0, date(2027, 1, 11)) == 1
    assert days_past_due(SCHEDULE, 0, date(2027, 3, 1)) == 50  # still the first one
    # The first paid, the second only partly: counted from the second.
    assert days_past_due(SCHEDULE, 15_000, date(2027, 3, 1)) == 19
    assert days_past_due(SCHEDULE, 20_000, date(2027, 3, 1)) == 0
    assert days_past_due(SCHEDULE, 30_050, date(2027, 12, 1)) == 0


# --- payment application ---------------------------------------------------------------------

# 7.3 % a year is 0.02 % a day on actual/365: $100,000 accrues exactly $20 a day.
BALANCE = LoanBalance(10_000_000, Decimal("0.073"), accrued_through=date(2027, 1, 1))


def test_interest_accrues_daily_actual_365() -> None:
    assert BALANCE.interest_to(date(2027, 1, 11)) == 20_000
    assert BALANCE.payoff_cents(date(2027, 1, 11)) == 10_020_000


def test_daily_interest_rounds_half_up_to_the_cent() -> None:
    # 1,250 cents at 7.3 % for 1 day is 0.25 cent -> 0; for 2 days 0.5 cent -> 1 (half-up).
    small = LoanBalance(1_250, Decimal("0.073"), accrued_through=date(2027, 1, 1))
    assert small.interest_to(date(2027, 1, 2)) == 0
    assert small.interest_to(date(2027, 1, 3)) == 1


def test_a_payment_pays_interest_before_principal() -> None:
    applied = apply_payment(BALANCE, 30_000, date(2027, 1, 11))
    assert (applied.to_fees_cents, applied.to_interest_cents, applied.to_principal_cents) == (
        0,
        20_000,
        10_000,
    )
    after = applied.balance_after
    assert (after.principal_cents, after.accrued_interest_cents) == (9_990_000, 0)
    assert after.accrued_through == date(2027, 1, 11)
    assert not applied.paid_off


def test_fees_are_paid_first_and_unpaid_interest_is_carried() -> None:
    owing = LoanBalance(10_000_000, Decimal("0.073"), date(2027, 1, 1), fees_cents=2_500)
    applied = apply_payment(owing, 12_500, date(2027, 1, 11))
    assert (applied.to_fees_cents, applied.to_interest_cents, applied.to_principal_cents) == (
        2_500,
        10_000,
        0,
    )
    after = applied.balance_after
    assert (after.fees_cents, after.accrued_interest_cents, after.principal_cents) == (
        0,
        10_000,
        10_000_000,
    )
    # Ten more days: the carried $100 plus another $200.
    assert after.interest_to(date(2027, 1, 21)) == 30_000


def test_the_payoff_amount_pays_the_loan_off() -> None:
    applied = apply_payment(BALANCE, 10_020_000, date(2027, 1, 11))
    assert applied.paid_off
    assert applied.to_principal_cents == 10_000_000


def test_a_payment_beyond_the_payoff_amount_is_refused() -> None:
    with pytest.raises(Overpayment):
        apply_payment(BALANCE, 10_020_001, date(2027, 1, 11))


def test_a_payment_dated_before_the_last_accrual_is_refused() -> None:
    with pytest.raises(ValueError):
        apply_payment(BALANCE, 100, date(2026, 12, 31))


@pytest.mark.parametrize("amount", [0, -100])
def test_a_payment_must_be_positive(amount: int) -> None:
    with pytest.raises(ValueError):
        apply_payment(BALANCE, amount, date(2027, 1, 11))


# --- the events ------------------------------------------------------------------------------

DISCLOSURE = disclose(500_000, Decimal("0.10"), 36, date(2027, 3, 1), origination_fee_cents=25_000)


def offered() -> LoanOffered:
    step = offer(LOAN, uuid.uuid4(), DISCLOSURE)
    assert step.state is S.OFFERED
    (event,) = step.events
    assert isinstance(event, LoanOffered)
    return event


def test_the_offer_records_the_disclosed_figures() -> None:
    event = offered()
    assert event.amount_financed_cents == 475_000
    assert event.prepaid_finance_charge_cents == 25_000
    assert event.finance_charge_cents == DISCLOSURE.total_of_payments_cents - 475_000
    assert event.annual_percentage_rate == DISCLOSURE.annual_percentage_rate
    assert event.number_of_payments == 36
    assert event.regular_payment_cents == 16_134
    assert (event.first_due_date, event.final_due_date) == (date(2027, 3, 1), date(2030, 2, 1))
    assert event.disclosure_version == DISCLOSURE.disclosure_version


def test_amounts_rates_and_buckets_are_sealed_as_credit_data() -> None:
    assert set(personal_fields(LoanOffered)) == {
        "amount_financed_cents",
        "prepaid_finance_charge_cents",
        "finance_charge_cents",
        "annual_percentage_rate",
        "total_of_payments_cents",
        "regular_payment_cents",
        "final_payment_cents",
    }
    assert set(personal_fields(PaymentReceived)) == {
        "amount_cents",
        "to_fees_cents",
        "to_interest_cents",
        "to_principal_cents",
    }
    assert set(personal_fields(LoanDisbursed)) == {"amount_cents"}
    assert set(personal_fields(LoanBecameDelinquent)) == {"bucket"}
    assert set(personal_fields(LoanChargedOff)) == {"principal_charged_off_cents", "days_past_due"}


def test_the_catalog_s_delinquent_buckets_are_the_domain_s() -> None:
    delinquent = {b.value for b in DelinquencyBucket} - {"current"}
    assert set(get_args(DelinquentBucketName)) == delinquent


def test_acceptance_records_the_disclosure_shown() -> None:
    event = offered()
    step = accept(S.OFFERED, event, event.disclosure_version)
    assert step.state is S.ACCEPTED
    assert step.events == (
        OfferAccepted(loan_id=LOAN, disclosure_version=event.disclosure_version),
    )


def test_acceptance_of_another_disclosure_is_refused() -> None:
    with pytest.raises(DisclosureNotShown):
        accept(S.OFFERED, offered(), "reg-z-1026.18/v0")


def test_an_expired_offer_cannot_be_accepted() -> None:
    event = offered()
    with pytest.raises(IllegalTransition):
        accept(S.OFFER_EXPIRED, event, event.disclosure_version)


def test_disbursement_pays_out_the_amount_financed() -> None:
    step = disburse(S.ACCEPTED, LOAN, DISCLOSURE, date(2027, 2, 1))
    assert step.state is S.ACTIVE
    assert step.events == (
        LoanDisbursed(loan_id=LOAN, amount_cents=475_000, disbursed_on=date(2027, 2, 1)),
    )


def test_a_missed_installment_makes_the_loan_delinquent_in_its_bucket() -> None:
    step = miss_payment(S.ACTIVE, LOAN, SCHEDULE[0], date(2027, 1, 20))
    assert step.state is S.DELINQUENT
    assert step.events == (
        PaymentMissed(loan_id=LOAN, installment_number=1, due_date=date(2027, 1, 10)),
        LoanBecameDelinquent(loan_id=LOAN, bucket="1-29"),
    )
    again = miss_payment(S.DELINQUENT, LOAN, SCHEDULE[1], date(2027, 2, 20))
    assert again.state is S.DELINQUENT
    assert [type(e) for e in again.events] == [PaymentMissed]


def test_an_installment_is_not_missed_on_its_due_date() -> None:
    with pytest.raises(ValueError):
        miss_payment(S.ACTIVE, LOAN, SCHEDULE[0], date(2027, 1, 10))


def loan_balance() -> LoanBalance:
    return LoanBalance(30_000, Decimal(0), accrued_through=date(2027, 1, 1))


def test_a_payment_that_brings_a_delinquent_loan_current_cures_it() -> None:
    outcome = receive_payment(
        S.DELINQUENT, LOAN, loan_balance(), SCHEDULE, 0, 10_000, date(2027, 1, 25), "pay-1"
    )
    assert outcome.step.state is S.ACTIVE
    (event,) = outcome.step.events
    assert isinstance(event, PaymentReceived)
    assert (event.idempotency_key, event.amount_cents, event.to_principal_cents) == (
        "pay-1",
        10_000,
        10_000,
    )


def test_a_partial_payment_leaves_a_delinquent_loan_delinquent() -> None:
    outcome = receive_payment(
        S.DELINQUENT, LOAN, loan_balance(), SCHEDULE, 0, 5_000, date(2027, 1, 25), "pay-1"
    )
    assert outcome.step.state is S.DELINQUENT


def test_paying_the_payoff_amount_pays_the_loan_off() -> None:
    outcome = receive_payment(
        S.ACTIVE, LOAN, loan_balance(), SCHEDULE, 0, 30_000, date(2027, 1, 5), "pay-1"
    )
    assert outcome.step.state is S.PAID_OFF
    assert outcome.step.events[1:] == (LoanPaidOff(loan_id=LOAN, paid_off_on=date(2027, 1, 5)),)
    closed = close(S.PAID_OFF, LOAN, date(2027, 2, 5))
    assert closed.state is S.CLOSED
    assert closed.events == (LoanClosed(loan_id=LOAN, closed_on=date(2027, 2, 5)),)


def test_a_loan_is_charged_off_at_120_days_and_not_before() -> None:
    with pytest.raises(IllegalTransition):
        charge_off(S.DELINQUENT, LOAN, loan_balance(), 119, date(2027, 5, 9))
    step = charge_off(S.DELINQUENT, LOAN, loan_balance(), 120, date(2027, 5, 10))
    assert step.state is S.CHARGED_OFF
    assert step.events == (
        LoanChargedOff(
            loan_id=LOAN,
            principal_charged_off_cents=30_000,
            days_past_due=120,
            charged_off_on=date(2027, 5, 10),
        ),
    )


def test_an_active_loan_cannot_be_charged_off() -> None:
    with pytest.raises(IllegalTransition):
        charge_off(S.ACTIVE, LOAN, loan_balance(), 200, date(2027, 9, 1))


def test_the_disclosure_s_dates_are_a_month_apart() -> None:
    dates = [p.due_date for p in DISCLOSURE.payment_schedule]
    assert all(
        timedelta(days=28) <= b - a <= timedelta(days=31) for a, b in itertools.pairwise(dates)
    )
