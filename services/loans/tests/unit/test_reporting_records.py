"""A month's line from loans' own records, in memory (SHR-4): status, amounts, dates and the
payment history as of the month's last day; what a dispute's answer does to the next file;
a produced file re-assembled from its lines.

Every expected value below is worked out by hand from a 0 % loan of $1,200 over 12 months
($100 due on the 15th, from 15 February 2026; disbursed 15 January 2026), so that no
interest hides an error; `test_the_balance_accrues_interest_as_servicing_applies_it` covers
a priced loan against servicing's own arithmetic.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date
from decimal import Decimal

import pytest

from expensura_loans.reporting.domain import (
    DISPUTE_RESOLVED,
    DISPUTED,
    Correction,
    Furnisher,
    InvalidCorrection,
    InvalidFile,
    LoanHistory,
    PaymentOnRecord,
    ReportedStatus,
    account_number,
    account_snapshot,
    as_furnished,
    base_record,
    furnish,
    month_end,
    parse_trailer,
    period_of,
    previous_month_end,
    reassembled,
    records_agree,
    validate,
)
from expensura_loans.servicing.domain import LoanBalance, apply_payment, disclose

pytestmark = pytest.mark.obligation("SHR-4")

SCHEDULE = disclose(120_000, Decimal(0), 12, date(2026, 2, 15)).payment_schedule
LOAN = LoanHistory(
    loan_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
    consumer_reference="subject-1",
    principal_cents=120_000,
    annual_rate=Decimal(0),
    schedule=SCHEDULE,
    disbursed_on=date(2026, 1, 15),
)
FURNISHER = Furnisher(
    identification_number="EXPENSURA-LOANS",
    name="Heewan Finance Limited",
    address="",
    telephone="0000000000",
    program_date=date(2026, 1, 1),
    innovis_program_identifier="EXPENSURA",
)


def paid(*payments: tuple[date, int], **more: object) -> LoanHistory:
    history = dataclasses.replace(
        LOAN, payments=tuple(PaymentOnRecord(on, cents) for on, cents in payments)
    )
    return dataclasses.replace(history, **more)  # type: ignore[arg-type]


def test_the_schedule_is_twelve_hundred_dollar_installments() -> None:
    assert [p.amount_cents for p in SCHEDULE] == [10_000] * 12
    assert [p.due_date for p in SCHEDULE[:3]] == [
        date(2026, 2, 15),
        date(2026, 3, 15),
        date(2026, 4, 15),
    ]


def test_a_loan_paid_on_time_is_current_with_its_balance_and_history() -> None:
    history = paid((date(2026, 2, 10), 10_000), (date(2026, 3, 10), 10_000))
    line = account_snapshot(history, date(2026, 3, 31))
    assert line is not None
    assert line.status is ReportedStatus.CURRENT
    assert line.current_balance_cents == 100_000
    assert line.amount_past_due_cents == 0
    assert line.actual_payment_cents == 10_000  # March's only
    assert line.date_of_last_payment == date(2026, 3, 10)
    assert line.date_opened == date(2026, 1, 15)
    assert line.original_amount_cents == 120_000
    assert line.terms_duration_months == 12
    assert line.scheduled_monthly_payment_cents == 10_000
    assert line.date_of_first_delinquency is None and line.date_closed is None
    # February and January current; nothing before the account opened.
    assert line.payment_history_profile == "00" + "B" * 22
    assert line.date_of_account_information == date(2026, 3, 31)
    assert line.account_number == account_number(LOAN.loan_id)
    assert line.consumer_reference == "subject-1"


def test_less_than_30_days_behind_is_still_current_with_nothing_past_due() -> None:
    line = account_snapshot(LOAN, date(2026, 2, 28))  # 13 days after the first due date
    assert line is not None
    assert line.status is ReportedStatus.CURRENT
    assert line.amount_past_due_cents == 0


def test_an_unpaid_loan_is_reported_60_days_late_from_its_first_missed_due_date() -> None:
    line = account_snapshot(LOAN, date(2026, 4, 30))  # 74 days after 15 February
    assert line is not None
    assert line.status is ReportedStatus.PAST_DUE_60
    assert line.amount_past_due_cents == 30_000  # February, March and April
    assert line.current_balance_cents == 120_000
    assert line.date_of_first_delinquency == date(2026, 2, 15)
    assert line.actual_payment_cents == 0 and line.date_of_last_payment is None
    assert line.payment_history_profile == "100" + "B" * 21  # March 44 days: 30-59


@pytest.mark.parametrize(
    ("as_of", "status"),
    [
        (date(2026, 3, 31), ReportedStatus.PAST_DUE_30),
        (date(2026, 5, 31), ReportedStatus.PAST_DUE_90),
        (date(2026, 6, 30), ReportedStatus.PAST_DUE_120),  # not charged off (yet) on record
    ],
)
def test_each_delinquency_bucket(as_of: date, status: ReportedStatus) -> None:
    line = account_snapshot(LOAN, as_of)
    assert line is not None and line.status is status


def test_a_loan_paid_off_is_reported_once_as_paid_then_no_more() -> None:
    history = paid((date(2026, 4, 5), 120_000), paid_off_on=date(2026, 4, 5))
    line = account_snapshot(history, date(2026, 4, 30))
    assert line is not None
    assert line.status is ReportedStatus.PAID_OFF
    assert (line.current_balance_cents, line.amount_past_due_cents) == (0, 0)
    assert line.date_closed == date(2026, 4, 5)
    assert line.actual_payment_cents == 120_000
    assert account_snapshot(history, date(2026, 5, 31)) is None


def test_a_charged_off_loan_is_reported_every_month_as_a_loss() -> None:
    history = dataclasses.replace(LOAN, charged_off_on=date(2026, 6, 15), charged_off_cents=120_000)
    for as_of in (date(2026, 6, 30), date(2026, 7, 31), date(2027, 3, 31)):
        line = account_snapshot(history, as_of)
        assert line is not None
        assert line.status is ReportedStatus.CHARGED_OFF
        assert line.current_balance_cents == line.amount_past_due_cents == 120_000
        assert line.original_charge_off_amount_cents == 120_000
        assert line.date_closed == date(2026, 6, 15)
        assert line.date_of_first_delinquency == date(2026, 2, 15)
    july = account_snapshot(history, date(2026, 7, 31))
    assert july is not None
    # June charged off; May 105 days, April 74, March 44, February 13, January 0.
    assert july.payment_history_profile == "L32100" + "B" * 18


def test_no_line_before_the_loan_is_disbursed() -> None:
    assert account_snapshot(LOAN, date(2025, 12, 31)) is None
    assert account_snapshot(dataclasses.replace(LOAN, disbursed_on=None), date(2026, 6, 30)) is None


def test_a_payment_after_the_month_end_is_not_in_that_months_line() -> None:
    history = paid((date(2026, 4, 1), 30_000))
    march = account_snapshot(history, date(2026, 3, 31))
    april = account_snapshot(history, date(2026, 4, 30))
    assert march is not None and april is not None
    assert march.status is ReportedStatus.PAST_DUE_30 and march.amount_past_due_cents == 20_000
    assert april.status is ReportedStatus.CURRENT and april.actual_payment_cents == 30_000
    assert april.payment_history_profile[:2] == "10"  # March was late, February was not


def test_the_balance_accrues_interest_as_servicing_applies_it() -> None:
    rate = Decimal("0.1499")
    schedule = disclose(500_000, rate, 12, date(2026, 2, 15)).payment_schedule
    history = LoanHistory(
        loan_id=uuid.uuid4(),
        consumer_reference="s",
        principal_cents=500_000,
        annual_rate=rate,
        schedule=schedule,
        disbursed_on=date(2026, 1, 15),
        payments=(PaymentOnRecord(date(2026, 2, 14), schedule[0].amount_cents),),
    )
    balance = LoanBalance(500_000, rate, date(2026, 1, 15))
    after = apply_payment(balance, schedule[0].amount_cents, date(2026, 2, 14)).balance_after
    line = account_snapshot(history, date(2026, 2, 28))
    assert line is not None
    assert line.current_balance_cents == after.payoff_cents(date(2026, 2, 28))
    assert line.current_balance_cents > after.principal_cents  # 14 days of interest


def test_an_account_number_is_the_loan_id_in_base32_and_fits_the_field() -> None:
    number = account_number(LOAN.loan_id)
    assert len(number) == 26 and number.isalnum() and number.isupper()
    assert account_number(uuid.UUID(int=LOAN.loan_id.int)) == number
    assert account_number(uuid.uuid4()) != number


def test_month_helpers() -> None:
    assert month_end(date(2028, 2, 3)) == date(2028, 2, 29)
    assert previous_month_end(date(2026, 1, 1)) == date(2025, 12, 31)
    assert period_of(date(2026, 3, 31)) == "2026-03"


# --- disputes and the next file ----------------------------------------------------------------


def test_an_open_dispute_is_flagged_xb_and_an_answer_xh_in_the_next_file() -> None:
    line = account_snapshot(LOAN, date(2026, 4, 30))
    assert line is not None
    flagged = as_furnished(line, open_dispute=True, answered_since_last_file=False, correction=None)
    assert flagged.compliance_condition_code == DISPUTED == "XB"
    resolved = as_furnished(
        line, open_dispute=False, answered_since_last_file=True, correction=None
    )
    assert resolved.compliance_condition_code == DISPUTE_RESOLVED == "XH"
    assert resolved.status is line.status  # a confirmation changes nothing else
    plain = as_furnished(line, open_dispute=False, answered_since_last_file=False, correction=None)
    assert plain == line
    record = base_record(FURNISHER, resolved)
    assert record[152:154] == "XH"  # positions 153-154


def test_a_correction_replaces_the_status_and_amounts_in_the_next_line() -> None:
    line = account_snapshot(LOAN, date(2026, 4, 30))
    assert line is not None
    correction = Correction(ReportedStatus.CURRENT, 90_000, 0, None)
    corrected = as_furnished(
        line, open_dispute=False, answered_since_last_file=True, correction=correction
    )
    assert corrected.status is ReportedStatus.CURRENT
    assert (corrected.current_balance_cents, corrected.amount_past_due_cents) == (90_000, 0)
    assert corrected.date_of_first_delinquency is None
    record = base_record(FURNISHER, corrected)
    assert record[123:125] == "11"  # status, positions 124-125
    assert record[154:163] == "000000900"  # balance in dollars, 155-163
    assert record[163:172] == "000000000"  # past due, 164-172


def test_a_correction_that_contradicts_itself_is_refused() -> None:
    line = account_snapshot(LOAN, date(2026, 4, 30))
    assert line is not None
    with pytest.raises(InvalidCorrection):
        Correction(ReportedStatus.CURRENT, 90_000, 100, None).applied_to(line)
    with pytest.raises(InvalidCorrection):
        Correction(ReportedStatus.PAST_DUE_30, 90_000, 10_000, None).applied_to(line)  # no DOFD
    with pytest.raises(InvalidCorrection):
        Correction(ReportedStatus.CHARGED_OFF, 0, 0, None)


def test_records_agree_ignores_only_the_compliance_code() -> None:
    line = account_snapshot(LOAN, date(2026, 4, 30))
    assert line is not None
    furnished = base_record(
        FURNISHER,
        as_furnished(line, open_dispute=True, answered_since_last_file=False, correction=None),
    )
    assert records_agree(furnished, base_record(FURNISHER, line))
    later = account_snapshot(paid((date(2026, 4, 20), 10_000)), date(2026, 4, 30))
    assert later is not None
    assert not records_agree(furnished, base_record(FURNISHER, later))


def test_a_file_reassembled_from_its_lines_is_the_file_produced() -> None:
    histories = [
        LOAN,
        dataclasses.replace(paid((date(2026, 2, 10), 10_000)), loan_id=uuid.uuid4()),
        dataclasses.replace(LOAN, loan_id=uuid.uuid4(), disbursed_on=date(2026, 5, 2)),
    ]
    as_of = date(2026, 3, 31)
    accounts = [a for h in histories if (a := account_snapshot(h, as_of)) is not None]
    assert len(accounts) == 2  # the third was not yet disbursed
    produced = furnish(FURNISHER, as_of, accounts, created_on=date(2026, 4, 1))
    header, *_ = produced.text.split("\n")
    lines = [event.record for _, event in produced.lines]
    assert reassembled(header, list(reversed(lines))) == produced.text
    # One line left out (its borrower erased): the trailer follows the lines that remain.
    fewer = reassembled(header, lines[:1])
    assert parse_trailer(fewer).total_base_records == 1
    validate(fewer)
    with pytest.raises(InvalidFile):
        reassembled(header, [lines[0][:-1]])
