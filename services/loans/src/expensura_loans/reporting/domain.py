"""Credit reporting to the bureaus (SHR-4): the monthly furnishing file and dispute deadlines.

SHR-4 lets loan data leave only for credit risk and fraud prevention, to credit bureaus, in
a standard format. The standard is Metro 2: this module writes a Metro 2-STYLE SUBSET of it
(the 426-character "unpacked" records, header + base segment + trailer, no appended
segments). It is NOT the certified CDIA format: fields we do not furnish are blank, and two
trailer totals and one header field are our own (marked "ext." below, placed where the
certified layout has reserved space). Positions follow the CDIA Credit Reporting Resource
Guide's numbering (1-based, inclusive).

File: records of exactly 426 characters, each followed by "\\n"; one header, one base
record per account (sorted by consumer account number), one trailer. Every record starts
with the record descriptor word "0426". Encoding: numeric fields right-justified and
zero-filled; alphanumeric fields upper case, left-justified and blank-filled, printable ASCII
only; dates MMDDYYYY, zero-filled when there is none; money in whole dollars, cents
truncated (Metro 2 reports no cents); positions not in the layout are blank. A value that
does not fit its field raises `FieldOverflow`: a credit file is never truncated silently.

Header (`HEADER_LAYOUT`)
    1-4 record descriptor word "0426" · 5-10 "HEADER" · 11-12 cycle identifier ·
    13-22 Innovis, 23-32 Equifax, 33-37 Experian, 38-47 TransUnion program identifiers ·
    48-55 activity date · 56-63 date created · 64-71 program date ·
    72-79 program revision date · 80-119 reporter name · 120-215 reporter address ·
    216-225 reporter telephone · 281-300 identification number (ext.: the certified header
    has none; the bureau keys a resent file on it and the activity date).
Base segment (`BASE_LAYOUT`)
    1-4 "0426" · 5 processing indicator "1" · 6-19 time stamp (MMDDYYYYHHMMSS) ·
    21-40 identification number (the furnisher's) · 41-42 cycle identifier ·
    43-72 consumer account number · 73 portfolio type "I" (installment) ·
    74-75 account type "01" (unsecured) · 76-83 date opened · 84-92 credit limit (0) ·
    93-101 highest credit (the original amount) · 102-104 terms duration (months) ·
    105 terms frequency "M" · 106-114 scheduled monthly payment · 115-123 actual payment ·
    124-125 account status · 126 payment rating · 127-150 payment history profile ·
    151-152 special comment · 153-154 compliance condition code · 155-163 current balance ·
    164-172 amount past due · 173-181 original charge-off amount ·
    182-189 date of account information · 190-197 FCRA compliance / date of first
    delinquency · 198-205 date closed · 206-213 date of last payment · 232-256 surname ·
    257-276 first name · 297 generation code · 298-306 social security number (always
    000000000: we hold no SSN) · 307-314 date of birth · 315-324 telephone (0: not
    furnished) · 325 ECOA code "1" (individual) · 326-327 consumer information indicator ·
    330-361 address line 1 · 394-413 city · 414-415 state · 416-424 postal code ·
    425 address indicator.
Trailer (`TRAILER_LAYOUT`)
    1-4 "0426" · 5-11 "TRAILER" · 12-20 total base records · 84-92 total of status 11 ·
    93-101 status 13 · 147-155 status 71 · 156-164 status 78 · 165-173 status 80 ·
    174-182 status 82 · 255-263 status 97 · 408-416 total current balance (ext.) ·
    417-425 total amount past due (ext.).

Account status (`STATUS_CODES`): 11 current; 71 30-59 days past due; 78 60-89; 80 90-119;
82 120-149; 13 paid or closed with a zero balance; 97 unpaid balance reported as a loss
(charge-off). Payment history profile: 24 months, the month before the activity date first;
0 current, 1 30-59 days past due, 2 60-89, 3 90-119, 4 120-149, 5 150-179, 6 180+,
B no history before the account opened, D no history this month, L charge-off.

Bureau disputes: FCRA §611(a)(1)(A) gives 30 days from receipt to investigate, extended to
45 (§611(a)(1)(B)) when the consumer supplies more information within those 30 days; the
furnisher's own investigation (§623(b)(2)) must finish inside the same period.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from expensura_events.catalog.loans_reporting import AccountFurnished, FurnishingFileProduced
from expensura_events.obligations import enforces
from expensura_loans.servicing.domain import (
    LoanBalance,
    ScheduledPayment,
    apply_payment,
    days_past_due,
)

RECORD_LENGTH = 426
RECORD_DESCRIPTOR_WORD = 426  # "0426" once zero-filled
HEADER_PREFIX = "0426HEADER"
BASE_PREFIX = "04261"  # the descriptor word and processing indicator "1"
TRAILER_PREFIX = "0426TRAILER"

PORTFOLIO_TYPE_INSTALLMENT = "I"
ACCOUNT_TYPE_UNSECURED = "01"
TERMS_FREQUENCY_MONTHLY = "M"
ECOA_INDIVIDUAL = "1"
PAYMENT_HISTORY_MONTHS = 24
PAYMENT_HISTORY_CODES = frozenset("0123456BDL")


class Kind(StrEnum):
    """How a field's value is written."""

    NUMERIC = "N"  # a non-negative int, right-justified, zero-filled
    ALPHANUMERIC = "AN"  # text, upper case, left-justified, blank-filled
    DATE = "D"  # a date as MMDDYYYY; None is zero-filled
    TIME_STAMP = "TS"  # a datetime as MMDDYYYYHHMMSS
    MONEY = "$"  # integer cents written as whole dollars, cents truncated


@dataclass(frozen=True)
class Field:
    name: str
    start: int  # 1-based, as the Resource Guide numbers positions
    length: int
    kind: Kind

    @property
    def end(self) -> int:
        """The last position (inclusive)."""
        return self.start + self.length - 1

    @property
    def slice(self) -> slice:
        return slice(self.start - 1, self.end)


N, AN, D, TS, M = Kind.NUMERIC, Kind.ALPHANUMERIC, Kind.DATE, Kind.TIME_STAMP, Kind.MONEY

HEADER_LAYOUT: tuple[Field, ...] = (
    Field("record_descriptor_word", 1, 4, N),
    Field("record_identifier", 5, 6, AN),
    Field("cycle_identifier", 11, 2, AN),
    Field("innovis_program_identifier", 13, 10, AN),
    Field("equifax_program_identifier", 23, 10, AN),
    Field("experian_program_identifier", 33, 5, AN),
    Field("transunion_program_identifier", 38, 10, AN),
    Field("activity_date", 48, 8, D),
    Field("date_created", 56, 8, D),
    Field("program_date", 64, 8, D),
    Field("program_revision_date", 72, 8, D),
    Field("reporter_name", 80, 40, AN),
    Field("reporter_address", 120, 96, AN),
    Field("reporter_telephone", 216, 10, N),
    Field("identification_number", 281, 20, AN),  # ext.
)

BASE_LAYOUT: tuple[Field, ...] = (
    Field("record_descriptor_word", 1, 4, N),
    Field("processing_indicator", 5, 1, N),
    Field("time_stamp", 6, 14, TS),
    Field("identification_number", 21, 20, AN),
    Field("cycle_identifier", 41, 2, AN),
    Field("consumer_account_number", 43, 30, AN),
    Field("portfolio_type", 73, 1, AN),
    Field("account_type", 74, 2, AN),
    Field("date_opened", 76, 8, D),
    Field("credit_limit", 84, 9, M),
    Field("highest_credit", 93, 9, M),
    Field("terms_duration", 102, 3, N),
    Field("terms_frequency", 105, 1, AN),
    Field("scheduled_monthly_payment_amount", 106, 9, M),
    Field("actual_payment_amount", 115, 9, M),
    Field("account_status", 124, 2, AN),
    Field("payment_rating", 126, 1, AN),
    Field("payment_history_profile", 127, 24, AN),
    Field("special_comment", 151, 2, AN),
    Field("compliance_condition_code", 153, 2, AN),
    Field("current_balance", 155, 9, M),
    Field("amount_past_due", 164, 9, M),
    Field("original_charge_off_amount", 173, 9, M),
    Field("date_of_account_information", 182, 8, D),
    Field("date_of_first_delinquency", 190, 8, D),
    Field("date_closed", 198, 8, D),
    Field("date_of_last_payment", 206, 8, D),
    Field("surname", 232, 25, AN),
    Field("first_name", 257, 20, AN),
    Field("generation_code", 297, 1, AN),
    Field("social_security_number", 298, 9, N),
    Field("date_of_birth", 307, 8, D),
    Field("telephone_number", 315, 10, N),
    Field("ecoa_code", 325, 1, AN),
    Field("consumer_information_indicator", 326, 2, AN),
    Field("address_line_1", 330, 32, AN),
    Field("city", 394, 20, AN),
    Field("state", 414, 2, AN),
    Field("postal_code", 416, 9, AN),
    Field("address_indicator", 425, 1, AN),
)

# The trailer counts accounts per status code, in the certified trailer's positions.
TRAILER_STATUS_FIELDS: Mapping[str, str] = {
    "11": "total_status_11",
    "13": "total_status_13",
    "71": "total_status_71",
    "78": "total_status_78",
    "80": "total_status_80",
    "82": "total_status_82",
    "97": "total_status_97",
}

TRAILER_LAYOUT: tuple[Field, ...] = (
    Field("record_descriptor_word", 1, 4, N),
    Field("record_identifier", 5, 7, AN),
    Field("total_base_records", 12, 9, N),
    Field("total_status_11", 84, 9, N),
    Field("total_status_13", 93, 9, N),
    Field("total_status_71", 147, 9, N),
    Field("total_status_78", 156, 9, N),
    Field("total_status_80", 165, 9, N),
    Field("total_status_82", 174, 9, N),
    Field("total_status_97", 255, 9, N),
    Field("total_current_balance", 408, 9, N),  # ext., whole dollars
    Field("total_amount_past_due", 417, 9, N),  # ext., whole dollars
)


def _check_layout(layout: tuple[Field, ...]) -> None:
    """A layout is in order, inside the record and without overlaps (checked on import)."""
    previous_end = 0
    for field in layout:
        if field.start <= previous_end or field.length < 1 or field.end > RECORD_LENGTH:
            raise AssertionError(f"{field.name} overlaps or leaves the record")
        previous_end = field.end


for _layout in (HEADER_LAYOUT, BASE_LAYOUT, TRAILER_LAYOUT):
    _check_layout(_layout)

HEADER = {f.name: f for f in HEADER_LAYOUT}
BASE = {f.name: f for f in BASE_LAYOUT}
TRAILER = {f.name: f for f in TRAILER_LAYOUT}


class InvalidFieldValue(ValueError):
    """A value has no representation in its field (negative, not ASCII, a line break)."""


class FieldOverflow(InvalidFieldValue):
    """A value is longer than its field: refused, never truncated."""


class InconsistentSnapshot(ValueError):
    """An account snapshot contradicts its own status (a bureau would reject the record)."""


class InvalidFile(ValueError):
    """A furnishing file is malformed, or its header/trailer disagree with its base records."""


class ReportedStatus(StrEnum):
    """An account's status at the end of the month, as we hold it."""

    CURRENT = "current"
    PAST_DUE_30 = "30"
    PAST_DUE_60 = "60"
    PAST_DUE_90 = "90"
    PAST_DUE_120 = "120"
    PAID_OFF = "paid-off"
    CHARGED_OFF = "charged-off"


# Metro 2 account status codes.
STATUS_CODES: Mapping[ReportedStatus, str] = {
    ReportedStatus.CURRENT: "11",
    ReportedStatus.PAST_DUE_30: "71",
    ReportedStatus.PAST_DUE_60: "78",
    ReportedStatus.PAST_DUE_90: "80",
    ReportedStatus.PAST_DUE_120: "82",
    ReportedStatus.PAID_OFF: "13",
    ReportedStatus.CHARGED_OFF: "97",
}

_DELINQUENT = frozenset(
    {
        ReportedStatus.PAST_DUE_30,
        ReportedStatus.PAST_DUE_60,
        ReportedStatus.PAST_DUE_90,
        ReportedStatus.PAST_DUE_120,
        ReportedStatus.CHARGED_OFF,
    }
)


def payment_rating(status: ReportedStatus) -> str:
    """Metro 2 asks for a payment rating only with status 13 (among ours): how the account
    stood when it closed. A paid-off loan here was paid while current: "0"."""
    return "0" if status is ReportedStatus.PAID_OFF else ""


@dataclass(frozen=True)
class Furnisher:
    """Us, as the bureaus know us."""

    identification_number: str
    name: str
    address: str
    telephone: str  # 10 digits
    program_date: date  # when we started furnishing
    program_revision_date: date | None = None
    innovis_program_identifier: str = ""
    equifax_program_identifier: str = ""
    experian_program_identifier: str = ""
    transunion_program_identifier: str = ""
    cycle_identifier: str = ""  # blank: we report monthly, not in cycles

    def __post_init__(self) -> None:
        if not (self.telephone.isascii() and self.telephone.isdigit()):
            raise InvalidFieldValue("the reporter telephone is digits only")


@dataclass(frozen=True)
class AccountSnapshot:
    """One loan account at the end of the month. Amounts in cents (written as dollars)."""

    account_number: str
    date_opened: date
    original_amount_cents: int  # highest credit
    terms_duration_months: int
    scheduled_monthly_payment_cents: int
    actual_payment_cents: int  # paid this month
    current_balance_cents: int
    amount_past_due_cents: int
    status: ReportedStatus
    original_charge_off_amount_cents: int
    date_of_account_information: date
    date_of_first_delinquency: date | None
    date_closed: date | None
    date_of_last_payment: date | None
    payment_history_profile: str  # 24 months, most recent first
    surname: str
    first_name: str
    date_of_birth: date | None  # None: zero-filled (loans holds no date of birth)
    address_line: str
    city: str
    state: str
    postal_code: str
    # Ours, to relate the account to its data subject and to bureau disputes. It is not
    # written to the file: there is no field for it, and we hold no SSN.
    consumer_reference: str
    generation_code: str = ""
    special_comment: str = ""
    compliance_condition_code: str = ""  # e.g. "XB" while a consumer dispute is open
    consumer_information_indicator: str = ""

    def __post_init__(self) -> None:
        amounts = (
            self.original_amount_cents,
            self.scheduled_monthly_payment_cents,
            self.actual_payment_cents,
            self.current_balance_cents,
            self.amount_past_due_cents,
            self.original_charge_off_amount_cents,
        )
        if any(a < 0 for a in amounts) or self.terms_duration_months < 1:
            raise InconsistentSnapshot(f"{self.account_number}: negative amount or no term")
        history = self.payment_history_profile
        if len(history) != PAYMENT_HISTORY_MONTHS or not set(history) <= PAYMENT_HISTORY_CODES:
            raise InconsistentSnapshot(
                f"{self.account_number}: the payment history profile is 24 of "
                f"{''.join(sorted(PAYMENT_HISTORY_CODES))}"
            )
        # What the status implies, so that we never furnish a record that contradicts
        # itself (FCRA §623(a)(1): we must not furnish information we know is inaccurate).
        if self.status in _DELINQUENT:
            if self.date_of_first_delinquency is None:
                # FCRA §623(a)(5): a delinquent account carries its date of first delinquency.
                raise InconsistentSnapshot(f"{self.account_number}: no date of first delinquency")
            if self.amount_past_due_cents == 0:
                raise InconsistentSnapshot(f"{self.account_number}: delinquent with nothing due")
        if self.status is ReportedStatus.CURRENT and self.amount_past_due_cents:
            raise InconsistentSnapshot(f"{self.account_number}: current with an amount past due")
        if self.status is ReportedStatus.PAID_OFF and (
            self.current_balance_cents or self.amount_past_due_cents or self.date_closed is None
        ):
            raise InconsistentSnapshot(f"{self.account_number}: paid off needs 0 and a close date")
        if self.status is ReportedStatus.CHARGED_OFF and not self.original_charge_off_amount_cents:
            raise InconsistentSnapshot(f"{self.account_number}: charged off with no amount")

    @property
    def account_status(self) -> str:
        return STATUS_CODES[self.status]


@dataclass(frozen=True)
class TrailerTotals:
    """What a trailer declares. Money in whole dollars, as the file carries it."""

    total_base_records: int
    total_status_11: int
    total_status_13: int
    total_status_71: int
    total_status_78: int
    total_status_80: int
    total_status_82: int
    total_status_97: int
    total_current_balance: int
    total_amount_past_due: int


def _encode(field: Field, value: object) -> str:
    """One field's characters; raises rather than truncate or guess."""
    if field.kind is Kind.ALPHANUMERIC:
        if not isinstance(value, str):
            raise InvalidFieldValue(f"{field.name} takes text")
        text = value.upper()
        # Printable ASCII only: a line break would split the record, and a character
        # outside ASCII may take more than one position on the bureau's side.
        if not all(" " <= c <= "~" for c in text):
            raise InvalidFieldValue(f"{field.name}: only printable ASCII characters")
        if len(text) > field.length:
            raise FieldOverflow(f"{field.name}: {len(text)} characters for {field.length}")
        return text.ljust(field.length)
    if field.kind is Kind.DATE:
        if value is None:
            return "0" * field.length
        if not isinstance(value, date):
            raise InvalidFieldValue(f"{field.name} takes a date")
        return value.strftime("%m%d") + f"{value.year:04d}"
    if field.kind is Kind.TIME_STAMP:
        if not isinstance(value, datetime):
            raise InvalidFieldValue(f"{field.name} takes a datetime")
        return value.strftime("%m%d") + f"{value.year:04d}" + value.strftime("%H%M%S")
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidFieldValue(f"{field.name} takes an integer")
    number = value // 100 if field.kind is Kind.MONEY else value  # cents truncated
    if number < 0:
        raise InvalidFieldValue(f"{field.name}: negative values have no representation")
    digits = str(number)
    if len(digits) > field.length:
        raise FieldOverflow(f"{field.name}: {len(digits)} digits for {field.length}")
    return digits.rjust(field.length, "0")


def _record(layout: tuple[Field, ...], values: Mapping[str, object]) -> str:
    mismatch = {f.name for f in layout} ^ set(values)
    if mismatch:
        raise KeyError(f"values and layout disagree on {sorted(mismatch)}")
    record = [" "] * RECORD_LENGTH
    for field in layout:
        record[field.slice] = _encode(field, values[field.name])
    return "".join(record)


def _header(furnisher: Furnisher, activity_date: date, created_on: date) -> str:
    return _record(
        HEADER_LAYOUT,
        {
            "record_descriptor_word": RECORD_DESCRIPTOR_WORD,
            "record_identifier": "HEADER",
            "cycle_identifier": furnisher.cycle_identifier,
            "innovis_program_identifier": furnisher.innovis_program_identifier,
            "equifax_program_identifier": furnisher.equifax_program_identifier,
            "experian_program_identifier": furnisher.experian_program_identifier,
            "transunion_program_identifier": furnisher.transunion_program_identifier,
            "activity_date": activity_date,
            "date_created": created_on,
            "program_date": furnisher.program_date,
            "program_revision_date": furnisher.program_revision_date,
            "reporter_name": furnisher.name,
            "reporter_address": furnisher.address,
            "reporter_telephone": int(furnisher.telephone),
            "identification_number": furnisher.identification_number,
        },
    )


def _base(furnisher: Furnisher, account: AccountSnapshot) -> str:
    return _record(
        BASE_LAYOUT,
        {
            "record_descriptor_word": RECORD_DESCRIPTOR_WORD,
            "processing_indicator": 1,
            # Derived from the snapshot, not the clock, so that a file is reproducible.
            "time_stamp": datetime.combine(account.date_of_account_information, time()),
            "identification_number": furnisher.identification_number,
            "cycle_identifier": furnisher.cycle_identifier,
            "consumer_account_number": account.account_number,
            "portfolio_type": PORTFOLIO_TYPE_INSTALLMENT,
            "account_type": ACCOUNT_TYPE_UNSECURED,
            "date_opened": account.date_opened,
            "credit_limit": 0,  # an installment loan has none
            "highest_credit": account.original_amount_cents,
            "terms_duration": account.terms_duration_months,
            "terms_frequency": TERMS_FREQUENCY_MONTHLY,
            "scheduled_monthly_payment_amount": account.scheduled_monthly_payment_cents,
            "actual_payment_amount": account.actual_payment_cents,
            "account_status": account.account_status,
            "payment_rating": payment_rating(account.status),
            "payment_history_profile": account.payment_history_profile,
            "special_comment": account.special_comment,
            "compliance_condition_code": account.compliance_condition_code,
            "current_balance": account.current_balance_cents,
            "amount_past_due": account.amount_past_due_cents,
            "original_charge_off_amount": account.original_charge_off_amount_cents,
            "date_of_account_information": account.date_of_account_information,
            "date_of_first_delinquency": account.date_of_first_delinquency,
            "date_closed": account.date_closed,
            "date_of_last_payment": account.date_of_last_payment,
            "surname": account.surname,
            "first_name": account.first_name,
            "generation_code": account.generation_code,
            "social_security_number": 0,  # we hold no SSN
            "date_of_birth": account.date_of_birth,
            "telephone_number": 0,  # not furnished: the bureaus do not need it
            "ecoa_code": ECOA_INDIVIDUAL,
            "consumer_information_indicator": account.consumer_information_indicator,
            "address_line_1": account.address_line,
            "city": account.city,
            "state": account.state,
            "postal_code": account.postal_code,
            "address_indicator": "",
        },
    )


def _trailer(totals: TrailerTotals) -> str:
    values: dict[str, object] = {
        "record_descriptor_word": RECORD_DESCRIPTOR_WORD,
        "record_identifier": "TRAILER",
    }
    # The totals are whole dollars already: written as plain numbers.
    values.update(asdict(totals))
    return _record(TRAILER_LAYOUT, values)


def _totals(base_records: Sequence[str]) -> TrailerTotals:
    """The trailer the base records call for, read back from the records themselves."""
    statuses = Counter(_text(BASE, r, "account_status") for r in base_records)
    unknown = set(statuses) - set(TRAILER_STATUS_FIELDS)
    if unknown:
        raise InvalidFile(f"account status codes outside this layout: {sorted(unknown)}")
    counts = {name: statuses[code] for code, name in TRAILER_STATUS_FIELDS.items()}
    return TrailerTotals(
        total_base_records=len(base_records),
        total_current_balance=sum(_number(BASE, r, "current_balance") for r in base_records),
        total_amount_past_due=sum(_number(BASE, r, "amount_past_due") for r in base_records),
        **counts,
    )


@enforces("SHR-4")
def furnishing_file(
    furnisher: Furnisher,
    activity_date: date,
    accounts: Sequence[AccountSnapshot],
    *,
    created_on: date | None = None,
) -> str:
    """The month's file for the bureaus: header, one base record per account (in account
    number order, so that the same month always gives the same bytes), trailer."""
    numbers = [a.account_number for a in accounts]
    if len(set(numbers)) != len(numbers):
        raise InconsistentSnapshot("an account is furnished twice")
    base = [_base(furnisher, a) for a in sorted(accounts, key=lambda a: a.account_number)]
    records = [
        _header(furnisher, activity_date, created_on or activity_date),
        *base,
        _trailer(_totals(base)),
    ]
    return "".join(r + "\n" for r in records)


@dataclass(frozen=True)
class Furnishing:
    """A month's file and what the log keeps of it: each borrower's line as an event of
    theirs (sealed with their key), and the file's period, counts and digest."""

    text: str
    produced: FurnishingFileProduced
    lines: tuple[tuple[str, AccountFurnished], ...]  # (the borrower's subject id, event)


@enforces("SHR-4")
def furnish(
    furnisher: Furnisher,
    activity_date: date,
    accounts: Sequence[AccountSnapshot],
    *,
    created_on: date | None = None,
) -> Furnishing:
    """The month's file (`furnishing_file`, validated) and its events."""
    text = furnishing_file(furnisher, activity_date, accounts, created_on=created_on)
    validate(text)
    period = f"{activity_date.year:04d}-{activity_date.month:02d}"
    records = _records(text)[1:-1]
    # The base records are in account number order (`furnishing_file`).
    ordered = sorted(accounts, key=lambda a: a.account_number)
    lines = tuple(
        (
            account.consumer_reference,
            AccountFurnished(period=period, account_number=account.account_number, record=record),
        )
        for account, record in zip(ordered, records, strict=True)
    )
    counts = Counter(account.account_status for account in ordered)
    produced = FurnishingFileProduced(
        period=period,
        record_count=len(records),
        status_counts=dict(sorted(counts.items())),
        sha256=hashlib.sha256(text.encode("ascii")).hexdigest(),
    )
    return Furnishing(text, produced, lines)


def _text(by_name: Mapping[str, Field], record: str, name: str) -> str:
    return record[by_name[name].slice]


def _number(by_name: Mapping[str, Field], record: str, name: str) -> int:
    raw = _text(by_name, record, name)
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidFile(f"{name} is not numeric: {raw!r}")
    return int(raw)


def _records(text: str) -> list[str]:
    if not text.endswith("\n"):
        raise InvalidFile("a file ends with a line break")
    records = text[:-1].split("\n")
    for line, record in enumerate(records, start=1):
        if len(record) != RECORD_LENGTH:
            raise InvalidFile(f"line {line}: {len(record)} characters, not {RECORD_LENGTH}")
    if len(records) < 2 or not records[0].startswith(HEADER_PREFIX):
        raise InvalidFile("the first record is not a header")
    if not records[-1].startswith(TRAILER_PREFIX):
        raise InvalidFile("the last record is not a trailer")
    for line, record in enumerate(records[1:-1], start=2):
        if not record.startswith(BASE_PREFIX):
            raise InvalidFile(f"line {line}: not a base record")
    return records


def parse_trailer(text: str) -> TrailerTotals:
    """The totals a file's trailer declares."""
    trailer = _records(text)[-1]
    return TrailerTotals(
        **{f.name: _number(TRAILER, trailer, f.name) for f in fields(TrailerTotals)}
    )


@enforces("SHR-4")
def validate(text: str) -> None:
    """Raise `InvalidFile` unless the file is well formed and its trailer agrees with its
    base records (the bureau refuses a file that does not; we check before sending)."""
    records = _records(text)
    declared = parse_trailer(text)
    actual = _totals(records[1:-1])
    declared_values = asdict(declared)
    wrong = [k for k, v in asdict(actual).items() if declared_values[k] != v]
    if wrong:
        raise InvalidFile(f"the trailer disagrees with the base records on {', '.join(wrong)}")
    numbers = [_text(BASE, r, "consumer_account_number") for r in records[1:-1]]
    if len(set(numbers)) != len(numbers):
        raise InvalidFile("an account is furnished twice")


# Bureau disputes.

INVESTIGATION_PERIOD = timedelta(days=30)  # FCRA §611(a)(1)(A)
EXTENDED_INVESTIGATION_PERIOD = timedelta(days=45)  # §611(a)(1)(B)


class DisputeOutcome(StrEnum):
    """What our investigation of a bureau dispute found (FCRA §623(b)(1))."""

    VERIFIED_AS_REPORTED = "verified-as-reported"
    MODIFIED = "modified"
    DELETED = "deleted"


def investigation_deadline(
    received_at: datetime, *, consumer_supplied_more_information: bool = False
) -> datetime:
    """When the investigation must be finished: 30 days from the bureau's receipt of the
    dispute, 45 when the consumer sent more information within the 30."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    period = (
        EXTENDED_INVESTIGATION_PERIOD
        if consumer_supplied_more_information
        else INVESTIGATION_PERIOD
    )
    return received_at + period


def overdue(
    received_at: datetime, now: datetime, *, consumer_supplied_more_information: bool = False
) -> bool:
    """Whether the deadline has passed unanswered (answering at the deadline is in time)."""
    deadline = investigation_deadline(
        received_at, consumer_supplied_more_information=consumer_supplied_more_information
    )
    return now > deadline


# --- loans' own records, as of a month end -----------------------------------------------
#
# A month's line of an account is a function of the loan's terms and its dated history (the
# disbursement, each payment, a pay-off or charge-off, by the dates they took effect), read
# as of the last day of the month. Nothing else: the same history always gives the same
# line, and a fact recorded late (a servicing run that caught up) changes the line that a
# later rebuild of that month gives, which is how a dispute's investigation sees it.


@dataclass(frozen=True)
class PaymentOnRecord:
    paid_on: date
    amount_cents: int


@dataclass(frozen=True)
class LoanHistory:
    """What loans holds of one loan: its terms and what happened, with the dates it did."""

    loan_id: UUID
    consumer_reference: str  # the borrower (our subject id; not written to the file)
    principal_cents: int
    annual_rate: Decimal
    schedule: tuple[ScheduledPayment, ...]
    disbursed_on: date | None
    payments: tuple[PaymentOnRecord, ...] = ()
    paid_off_on: date | None = None
    charged_off_on: date | None = None
    charged_off_cents: int = 0


def account_number(loan_id: UUID) -> str:
    """The consumer account number we furnish a loan under: its id in base32 (26
    characters, Metro 2's field has 30), so that it is stable and names nobody."""
    return base64.b32encode(loan_id.bytes).decode("ascii").rstrip("=")


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month_end(day: date) -> date:
    """The last day of the month before `day`'s."""
    return month_start(day) - timedelta(days=1)


def period_of(day: date) -> str:
    """The period (YYYY-MM) `day` falls in, as the events name it."""
    return f"{day.year:04d}-{day.month:02d}"


def _paid_through(history: LoanHistory, as_of: date) -> int:
    return sum(p.amount_cents for p in history.payments if p.paid_on <= as_of)


def _oldest_unpaid_due(history: LoanHistory, as_of: date) -> date | None:
    """The due date of the oldest installment not fully paid by `as_of` and due before it."""
    paid = _paid_through(history, as_of)
    covered = 0
    for installment in sorted(history.schedule, key=lambda p: p.number):
        covered += installment.amount_cents
        if covered > paid:
            return installment.due_date if installment.due_date < as_of else None
    return None


def _history_code(history: LoanHistory, as_of: date) -> str:
    """One month of the payment history profile, as the account stood at `as_of`."""
    if history.disbursed_on is None or history.disbursed_on > as_of:
        return "B"  # no history before the account opened
    if history.charged_off_on is not None and history.charged_off_on <= as_of:
        return "L"
    if history.paid_off_on is not None and history.paid_off_on <= as_of:
        return "0"
    behind = days_past_due(history.schedule, _paid_through(history, as_of), as_of)
    for floor, code in ((180, "6"), (150, "5"), (120, "4"), (90, "3"), (60, "2"), (30, "1")):
        if behind >= floor:
            return code
    return "0"


def _status(behind: int) -> ReportedStatus:
    """Metro 2 reports 0-29 days past due as current (status 11)."""
    for floor, status in (
        (120, ReportedStatus.PAST_DUE_120),
        (90, ReportedStatus.PAST_DUE_90),
        (60, ReportedStatus.PAST_DUE_60),
        (30, ReportedStatus.PAST_DUE_30),
    ):
        if behind >= floor:
            return status
    return ReportedStatus.CURRENT


def _balance_on(history: LoanHistory, as_of: date) -> int:
    """What the borrower owed at the end of `as_of`: the payments replayed as servicing
    applied them (fees, interest to the day, principal), plus interest accrued since."""
    assert history.disbursed_on is not None
    balance = LoanBalance(
        principal_cents=history.principal_cents,
        annual_rate=history.annual_rate,
        accrued_through=history.disbursed_on,
    )
    for payment in sorted(history.payments, key=lambda p: p.paid_on):
        if payment.paid_on <= as_of:
            balance = apply_payment(balance, payment.amount_cents, payment.paid_on).balance_after
    return balance.payoff_cents(as_of)


@enforces("SHR-4")
def account_snapshot(history: LoanHistory, as_of: date) -> AccountSnapshot | None:
    """The account's line for the month ending `as_of`, from loans' records only; None when
    it has none that month (not yet disbursed, or paid off in an earlier month: a paid
    account is reported once, as paid, and then no more). A charged-off account is reported
    every month, as the loss it is. The consumer's name, date of birth and address are
    blank: loans holds none of them (the bureau knows the consumer by its own inquiries)."""
    if history.disbursed_on is None or history.disbursed_on > as_of:
        return None
    start = month_start(as_of)
    if history.paid_off_on is not None and history.paid_off_on < start:
        return None
    payments = [p for p in history.payments if p.paid_on <= as_of]
    charged_off = history.charged_off_on is not None and history.charged_off_on <= as_of
    paid_off = history.paid_off_on is not None and history.paid_off_on <= as_of
    dofd: date | None = None
    closed: date | None = None
    charge_off_amount = 0
    if charged_off:
        assert history.charged_off_on is not None
        status = ReportedStatus.CHARGED_OFF
        balance = past_due = charge_off_amount = history.charged_off_cents
        dofd = _oldest_unpaid_due(history, history.charged_off_on)
        closed = history.charged_off_on
    elif paid_off:
        status, balance, past_due, closed = ReportedStatus.PAID_OFF, 0, 0, history.paid_off_on
    else:
        status = _status(days_past_due(history.schedule, _paid_through(history, as_of), as_of))
        balance = _balance_on(history, as_of)
        past_due = 0
        if status is not ReportedStatus.CURRENT:
            due = sum(p.amount_cents for p in history.schedule if p.due_date < as_of)
            past_due = max(0, due - _paid_through(history, as_of))
            dofd = _oldest_unpaid_due(history, as_of)
    profile = "".join(
        _history_code(history, previous_month_end(_months_back(start, k)))
        for k in range(PAYMENT_HISTORY_MONTHS)
    )
    return AccountSnapshot(
        account_number=account_number(history.loan_id),
        date_opened=history.disbursed_on,
        original_amount_cents=history.principal_cents,
        terms_duration_months=len(history.schedule),
        scheduled_monthly_payment_cents=history.schedule[0].amount_cents,
        actual_payment_cents=sum(p.amount_cents for p in payments if p.paid_on >= start),
        current_balance_cents=balance,
        amount_past_due_cents=past_due,
        status=status,
        original_charge_off_amount_cents=charge_off_amount,
        date_of_account_information=as_of,
        date_of_first_delinquency=dofd,
        date_closed=closed,
        date_of_last_payment=max((p.paid_on for p in payments), default=None),
        payment_history_profile=profile,
        surname="",
        first_name="",
        date_of_birth=None,
        address_line="",
        city="",
        state="",
        postal_code="",
        consumer_reference=history.consumer_reference,
    )


def _months_back(first_of_month: date, months: int) -> date:
    """The first day of the month `months` before `first_of_month`'s."""
    year, month0 = divmod(first_of_month.year * 12 + first_of_month.month - 1 - months, 12)
    return date(year, month0 + 1, 1)


# --- what a dispute's answer does to the next file ----------------------------------------

# Metro 2 compliance condition codes (FCRA §623(a)(3): a furnisher that knows a consumer
# disputes an account says so when it furnishes it).
DISPUTED = "XB"  # account information disputed by the consumer under the FCRA
DISPUTE_RESOLVED = "XH"  # previously in dispute; the furnisher's investigation is complete

# What an investigator may correct: the status and the amounts and date it implies. A paid
# or charged-off account's line follows from the pay-off or charge-off itself.
CORRECTABLE_STATUSES = frozenset(
    {
        ReportedStatus.CURRENT,
        ReportedStatus.PAST_DUE_30,
        ReportedStatus.PAST_DUE_60,
        ReportedStatus.PAST_DUE_90,
        ReportedStatus.PAST_DUE_120,
    }
)


class InvalidCorrection(ValueError):
    """A correction that would furnish a line contradicting itself, or of a kind the
    investigation cannot make."""


@dataclass(frozen=True)
class Correction:
    """What an investigation found the account's status and amounts to be."""

    status: ReportedStatus
    current_balance_cents: int
    amount_past_due_cents: int
    date_of_first_delinquency: date | None

    def __post_init__(self) -> None:
        if self.status not in CORRECTABLE_STATUSES:
            raise InvalidCorrection(f"a correction cannot report {self.status.value}")

    def applied_to(self, snapshot: AccountSnapshot) -> AccountSnapshot:
        """The snapshot as corrected; `InvalidCorrection` if the result contradicts itself."""
        try:
            return replace(
                snapshot,
                status=self.status,
                current_balance_cents=self.current_balance_cents,
                amount_past_due_cents=self.amount_past_due_cents,
                date_of_first_delinquency=self.date_of_first_delinquency,
                original_charge_off_amount_cents=0,
                date_closed=None,
            )
        except InconsistentSnapshot as exc:
            raise InvalidCorrection(str(exc)) from None


def as_furnished(
    snapshot: AccountSnapshot,
    *,
    open_dispute: bool,
    answered_since_last_file: bool,
    correction: Correction | None,
) -> AccountSnapshot:
    """The line a file carries, disputes considered: a correction answered since the last
    file replaces what the records say (once: from then on the records speak, and records
    that were wrong are corrected in servicing); an open dispute is flagged XB, a dispute
    answered since the last file XH."""
    if correction is not None:
        snapshot = correction.applied_to(snapshot)
    code = DISPUTED if open_dispute else DISPUTE_RESOLVED if answered_since_last_file else ""
    return replace(snapshot, compliance_condition_code=code)


def base_record(furnisher: Furnisher, account: AccountSnapshot) -> str:
    """One account's base record, as a file would carry it."""
    return _base(furnisher, account)


_COMPLIANCE = BASE["compliance_condition_code"].slice


def records_agree(furnished: str, rebuilt: str) -> bool:
    """Whether a furnished line says what loans' records say now of the same month (the
    compliance condition code aside: it tells of the dispute, not of the account)."""

    def without_code(record: str) -> str:
        return record[: _COMPLIANCE.start] + "  " + record[_COMPLIANCE.stop :]

    return without_code(furnished) == without_code(rebuilt)


def reassembled(header: str, base_records: Sequence[str]) -> str:
    """A produced file again, from its header and its lines (the lines are kept sealed
    with each borrower's key; the trailer follows from them)."""
    records = sorted(base_records, key=lambda r: _text(BASE, r, "consumer_account_number"))
    text = "".join(r + "\n" for r in (header, *records, _trailer(_totals(records))))
    validate(text)
    return text
