"""Legal retention of loan records (RUL-2, USE-3). Pure rules: no I/O, no clock.

On cancellation processing stops, except what the law requires: each class of loan record
the law makes us keep is placed under a retention hold with an end date, and is erased when
its hold ends. A record appended with `retention_hold=hold_for(its class)` is sealed with
the hold's own key (`envelope.key_owner`), so erasing the subject leaves it readable, for
legal compliance only, until `privacy.shredding.release_hold` destroys that key.

- `RETENTION_SCHEDULE`: per record class, its hold, its period, what starts the clock and
  the rule cited. Where no rule binding a non-bank consumer lender names a period, the
  entry says so (`Basis`) and the period is our documented policy.
- `record_class_of`: every `loans.*` event type is classified or deliberately not retained.
- `retention_hold_of`: the hold a loans record is appended under.
- `clocked_records`: when each of a subject's held records' clock started, from the log.
- `holds_on_cancellation`: one hold per hold name, ending at the latest end among its
  records; `due`: the holds whose end has come.

Not scheduled here: a litigation or investigation hold (Reg B §1002.12(b)(4): kept until
final disposition) has no end date known in advance and is placed by hand.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.catalog.loans_servicing import LoanClosed, PaymentMissed
from expensura_events.envelope import DomainEvent, EventEnvelope
from expensura_events.obligations import enforces


class RecordClass(StrEnum):
    """The classes of loan record the retention rules name."""

    APPLICATION = "application"
    ADVERSE_ACTION = "adverse-action"
    ACCOUNT = "account"
    PAYMENT = "payment"
    IDENTITY_VERIFICATION = "identity-verification"
    CREDIT_REPORTING = "credit-reporting"


class Basis(StrEnum):
    """How firmly the period rests on the rule cited."""

    # The rule binds a consumer lender and names the period.
    REGULATION = "regulation"
    # The rule binds banks (and bank partners pass it on by contract); whether it binds a
    # non-bank consumer lender directly is not confirmed, so we adopt its period as policy.
    REGULATION_ADOPTED = "regulation-adopted"
    # No rule names a period for these records; the period is ours, reasoned from the rule.
    POLICY = "policy"


@dataclass(frozen=True)
class RetentionRule:
    record_class: RecordClass
    hold: str  # the envelope's `retention_hold`: ^[a-z0-9][a-z0-9.-]*$
    period_months: int
    clock: str  # what starts the clock
    citation: str
    basis: Basis


_SCHEDULE: tuple[RetentionRule, ...] = (
    # Reg B §1002.12(b)(1): the application, the information used in evaluating it and any
    # monitoring information, kept 25 months after the creditor notifies the applicant of
    # action taken (or of incompleteness). An application we never got a notice out for
    # (§1002.12(b)(3)) runs 25 months from receipt: the caller passes that date.
    RetentionRule(
        RecordClass.APPLICATION,
        hold="reg-b-applications",
        period_months=25,
        clock="notice of action taken (or of incompleteness)",
        citation="ECOA / Reg B, 12 CFR 1002.12(b)(1)",
        basis=Basis.REGULATION,
    ),
    # Reg B §1002.12(b)(1)(ii): the notification of action taken and the statement of
    # specific reasons for adverse action, same 25 months from the notice. (Adverse action
    # on an existing account, §1002.12(b)(2), is also 25 months; loans takes none yet.)
    RetentionRule(
        RecordClass.ADVERSE_ACTION,
        hold="reg-b-adverse-action",
        period_months=25,
        clock="notice of action taken",
        citation="ECOA / Reg B, 12 CFR 1002.12(b)(1)(ii)",
        basis=Basis.REGULATION,
    ),
    # BSA: a record of each extension of credit over $10,000 (31 CFR 1010.410(a)), kept five
    # years (1010.430(d)). 1010.430(d) does not say from when; counting from the account's
    # closing keeps every record of it at least five years after it was made. It also covers
    # Reg Z §1026.25(a) (evidence of compliance, two years after the disclosures were
    # required: the offer's disclosure is a record of this class) and Reg B's 25 months for
    # an approval. Applicability: "financial institution" (31 CFR 1010.100(t)) names banks
    # and, among lenders, only residential mortgage lenders, so for our unsecured loans this
    # is adopted, not confirmed; we apply it to every loan, not only those over $10,000.
    RetentionRule(
        RecordClass.ACCOUNT,
        hold="bsa-account-records",
        period_months=60,
        clock="account closed (an offer never accepted: the date it lapsed)",
        citation="BSA, 31 CFR 1010.410(a) and 1010.430(d); covers Reg Z 12 CFR 1026.25(a)",
        basis=Basis.REGULATION_ADOPTED,
    ),
    # No federal rule names a period for a closed-end lender's payment records. Policy: five
    # years after each payment, BSA's general period (31 CFR 1010.430(d)) and the outer limit
    # for FCRA actions (15 U.S.C. 1681p): the payment history is what we furnish.
    RetentionRule(
        RecordClass.PAYMENT,
        hold="loan-payment-records",
        period_months=60,
        clock="payment (or the missed payment's due date)",
        citation="policy; reasoned from 31 CFR 1010.430(d) and 15 U.S.C. 1681p",
        basis=Basis.POLICY,
    ),
    # CIP: identifying information kept five years after the account is closed (the records
    # of how it was verified: five years after they were made, which this covers). The CIP
    # rule is 31 CFR 1020.220(a)(3)(ii) for banks; we know of no CIP rule for non-bank
    # consumer lenders (Part 1029, loan or finance companies, has an AML program and SARs
    # but, as far as we know, no CIP section), so this is the bank rule adopted.
    RetentionRule(
        RecordClass.IDENTITY_VERIFICATION,
        hold="cip-identification",
        period_months=60,
        clock="account closed",
        citation="CIP, 31 CFR 1020.220(a)(3)(ii) (banks)",
        basis=Basis.REGULATION_ADOPTED,
    ),
    # FCRA names no retention period for a furnisher's records. Reg V asks a furnisher's
    # policies to keep records "for a reasonable period of time" to substantiate what it
    # furnished (12 CFR 1022.42 and Appendix E; the exact paragraph is not re-checked here).
    # Policy: five years after each record, the outer limit for an FCRA action
    # (15 U.S.C. 1681p: two years after discovery, at most five after the violation).
    RetentionRule(
        RecordClass.CREDIT_REPORTING,
        hold="fcra-furnishing",
        period_months=60,
        clock="account information furnished, or dispute received or answered",
        citation="policy; FCRA has no period (12 CFR 1022.42, App. E; 15 U.S.C. 1681p)",
        basis=Basis.POLICY,
    ),
)

RETENTION_SCHEDULE: Mapping[RecordClass, RetentionRule] = MappingProxyType(
    {rule.record_class: rule for rule in _SCHEDULE}
)

# Every `loans.*` event type: its record class, or None where it is deliberately not retained.
EVENT_RECORD_CLASSES: Mapping[str, RecordClass | None] = MappingProxyType(
    {
        # The application and what its evaluation used (Reg B §1002.12(b)(1)(i)). A refusal for
        # want of verification or a proven e-mail is held as a notice of incompleteness.
        "loans.LoanApplicationReceived": RecordClass.APPLICATION,
        "loans.LoanApplicationRefused": RecordClass.APPLICATION,
        "loans.CreditReportRequested": RecordClass.APPLICATION,
        "loans.ApplicationAssessed": RecordClass.APPLICATION,
        "loans.AssessmentNotPermitted": RecordClass.APPLICATION,
        "loans.AdverseActionNoticeIssued": RecordClass.ADVERSE_ACTION,
        # Fraud and risk review (USE-6) is part of how the application was decided: kept as
        # the application is (Reg B 1002.12(b)(1) keeps "any information obtained" for it).
        "loans.RiskSignalRaised": RecordClass.APPLICATION,
        "loans.ApplicationHeldForReview": RecordClass.APPLICATION,
        "loans.RiskReviewConcluded": RecordClass.APPLICATION,
        # The offer's disclosure and its acceptance are the account's terms.
        "loans.LoanOffered": RecordClass.ACCOUNT,
        "loans.OfferAccepted": RecordClass.ACCOUNT,
        "loans.LoanDisbursed": RecordClass.ACCOUNT,
        "loans.LoanBecameDelinquent": RecordClass.ACCOUNT,
        "loans.LoanPaidOff": RecordClass.ACCOUNT,
        "loans.LoanChargedOff": RecordClass.ACCOUNT,
        "loans.LoanClosed": RecordClass.ACCOUNT,
        # A dispute of the balance is part of the account's history (and the case a
        # dispute-resolution disclosure rests on): kept as the account is.
        "loans.BalanceDisputeOpened": RecordClass.ACCOUNT,
        "loans.PaymentReceived": RecordClass.PAYMENT,
        "loans.PaymentMissed": RecordClass.PAYMENT,
        "loans.AccountFurnished": RecordClass.CREDIT_REPORTING,
        "loans.BureauDisputeReceived": RecordClass.CREDIT_REPORTING,
        "loans.BureauDisputeAnswered": RecordClass.CREDIT_REPORTING,
        # The month's file names no one (its lines are `AccountFurnished`): nothing personal
        # to hold or to erase.
        "loans.FurnishingFileProduced": None,
        "loans.FurnishingFileDelivered": None,
    }
)

# A customer notice is classified by its kind (`notice_kind`), not by its type alone.
NOTICE_EVENT_TYPE = "loans.CustomerNoticeRequested"
NOTICE_RECORD_CLASSES: Mapping[NoticeKind, RecordClass | None] = MappingProxyType(
    {
        # A copy of the notification of action taken (Reg B §1002.12(b)(1)(ii)).
        NoticeKind.ADVERSE_ACTION: RecordClass.ADVERSE_ACTION,
        NoticeKind.OFFER: RecordClass.APPLICATION,
        # No rule requires a copy of these; the payment or delinquency they tell of is held.
        NoticeKind.PAYMENT_DUE: None,
        NoticeKind.RECEIPT: None,
        NoticeKind.LATE_NOTICE: None,
    }
)
# No `loans.*` event is of the identity-verification class: verification is identity's
# (`identity.RealNameVerified`); the class and its hold are declared here so that the
# schedule is whole, and identity holds its records under `hold_for(IDENTITY_VERIFICATION)`.


class UnclassifiedEvent(LookupError):
    """An event type the retention table does not know: classify it before recording it."""


def record_class_of(event_type: str, notice_kind: NoticeKind | None = None) -> RecordClass | None:
    """The record class of a loans event (None: deliberately not retained). A customer notice
    needs its kind."""
    if event_type == NOTICE_EVENT_TYPE:
        if notice_kind is None:
            raise UnclassifiedEvent(f"{event_type} is classified by its notice kind")
        return NOTICE_RECORD_CLASSES[notice_kind]
    try:
        return EVENT_RECORD_CLASSES[event_type]
    except KeyError:
        raise UnclassifiedEvent(event_type) from None


def hold_for(record_class: RecordClass) -> str:
    """The retention hold a record of this class is appended under."""
    return RETENTION_SCHEDULE[record_class].hold


def retention_hold_of(event: DomainEvent) -> str | None:
    """The hold a loans record is appended under (None: its class is not retained); a
    customer notice's by its kind. Raises UnclassifiedEvent."""
    kind = event.kind if isinstance(event, CustomerNoticeRequested) else None
    record_class = record_class_of(event.event_type, kind)
    return None if record_class is None else hold_for(record_class)


def release_reason(hold: str) -> str:
    """What `platform.RetentionHoldEnded` says of a hold's end: its period and rule."""
    for rule in RETENTION_SCHEDULE.values():
        if rule.hold == hold:
            return f"retention period over: {rule.period_months} months, {rule.citation}"
    return "retention period over"


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months; a day the target month lacks becomes its last day
    (31 January + 1 month is 28 or 29 February)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a retention clock needs a timezone-aware datetime")
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@enforces("RUL-2", "USE-3")
def hold_ends(record_class: RecordClass, clock_started: datetime) -> datetime:
    """When the hold on a record of this class ends, its clock having started then."""
    return add_months(clock_started, RETENTION_SCHEDULE[record_class].period_months)


@dataclass(frozen=True)
class Hold:
    subject_id: str
    hold: str
    ends_at: datetime


class ClockedRecord(NamedTuple):
    """One of the subject's loans records and when its class's clock started for it."""

    event_type: str
    clock_started: datetime
    notice_kind: NoticeKind | None = None


@enforces("RUL-2", "USE-3")
def holds_on_cancellation(
    subject_id: str, records: Iterable[ClockedRecord | tuple[str, datetime]]
) -> list[Hold]:
    """The holds to place when the subject cancels: one per hold name, ending at the latest
    end among its records (sorted by hold name). A class with no records gets no hold.
    A record is `(event_type, clock_started)`, or a `ClockedRecord` naming a notice's kind."""
    if not subject_id:
        raise ValueError("a hold needs a subject")
    ends: dict[str, datetime] = {}
    for given in records:
        record = ClockedRecord(*given)
        record_class = record_class_of(record.event_type, record.notice_kind)
        if record_class is None:
            continue
        hold = hold_for(record_class)
        end = hold_ends(record_class, record.clock_started)
        if hold not in ends or end > ends[hold]:
            ends[hold] = end
    return [Hold(subject_id, hold, ends[hold]) for hold in sorted(ends)]


@enforces("RUL-2", "USE-3")
def clocked_records(records: Iterable[EventEnvelope], erased_at: datetime) -> list[ClockedRecord]:
    """The subject's records under a retention hold (`retention_hold` set), each with when
    its class's clock started, as its rule counts it:

    - an account record: when its loan closed (`loans.LoanClosed` in its stream); a loan
      not closed (an offer not accepted, a loan being repaid or charged off) is no longer
      ours to service once its borrower is erased, so its clock starts with the erasure;
    - a missed payment: its due date;
    - any other: when it was recorded. An application's latest record is its notice of
      action taken (the decision, the adverse-action notice, the offer), so the hold, which
      ends at the latest end among its records, runs from the notice; an application never
      decided runs from its last record.
    """
    if erased_at.tzinfo is None or erased_at.utcoffset() is None:
        raise ValueError("erased_at must be timezone-aware")
    held = [r for r in records if r.retention_hold is not None]
    closed = {r.stream_id: r.occurred_at for r in held if isinstance(r.payload, LoanClosed)}
    clocked: list[ClockedRecord] = []
    for record in held:
        payload = record.payload
        kind = payload.kind if isinstance(payload, CustomerNoticeRequested) else None
        record_class = record_class_of(record.event_type, kind)
        if record_class is RecordClass.ACCOUNT:
            started = closed.get(record.stream_id, erased_at)
        elif isinstance(payload, PaymentMissed) and isinstance(payload.due_date, date):
            started = datetime.combine(payload.due_date, time(), UTC)
        else:
            started = record.occurred_at
        clocked.append(ClockedRecord(record.event_type, started, kind))
    return clocked


@enforces("RUL-2")
def due(holds: Sequence[Hold], now: datetime) -> list[Hold]:
    """The holds whose end has come (at or before `now`): release them, and their records
    are erased."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return [h for h in holds if h.ends_at <= now]
