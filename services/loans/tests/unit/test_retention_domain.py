"""Legal retention rules in memory (RUL-2, USE-3): the schedule's periods against the cited
figures, calendar month arithmetic, classification of every loans event type, the holds
placed on cancellation and when they fall due."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

import expensura_events.catalog  # noqa: F401  (registers every event type)
from expensura_events.catalog.loans_notices import NoticeKind
from expensura_events.envelope import EventEnvelope
from expensura_events.obligations import enforced_by
from expensura_events.registry import REGISTRY
from expensura_loans.retention.domain import (
    EVENT_RECORD_CLASSES,
    NOTICE_EVENT_TYPE,
    NOTICE_RECORD_CLASSES,
    RETENTION_SCHEDULE,
    Basis,
    ClockedRecord,
    Hold,
    RecordClass,
    UnclassifiedEvent,
    add_months,
    due,
    hold_ends,
    hold_for,
    holds_on_cancellation,
    record_class_of,
)

SUBJECT = "subject-1"
NOTICE_DAY = datetime(2025, 3, 10, 14, 30, tzinfo=UTC)


# --- the schedule --------------------------------------------------------------------------


@pytest.mark.obligation("RUL-2", "USE-3")
@pytest.mark.parametrize(
    ("record_class", "months", "cited"),
    [
        # Reg B 12 CFR 1002.12(b)(1): 25 months after notice of action taken.
        (RecordClass.APPLICATION, 25, "1002.12(b)(1)"),
        (RecordClass.ADVERSE_ACTION, 25, "1002.12(b)(1)"),
        # BSA 31 CFR 1010.430(d): five years.
        (RecordClass.ACCOUNT, 60, "1010.430(d)"),
        # CIP 31 CFR 1020.220(a)(3)(ii): five years after the account is closed.
        (RecordClass.IDENTITY_VERIFICATION, 60, "1020.220(a)(3)(ii)"),
        # Policy periods, reasoned from FCRA's five-year outer limit for actions.
        (RecordClass.PAYMENT, 60, "1681p"),
        (RecordClass.CREDIT_REPORTING, 60, "1681p"),
    ],
)
def test_each_class_is_kept_for_the_period_its_rule_names(
    record_class: RecordClass, months: int, cited: str
) -> None:
    rule = RETENTION_SCHEDULE[record_class]
    assert rule.period_months == months
    assert cited in rule.citation


@pytest.mark.obligation("USE-3")
def test_every_record_class_has_exactly_one_entry_with_a_clock_and_a_citation() -> None:
    assert set(RETENTION_SCHEDULE) == set(RecordClass)
    for record_class, rule in RETENTION_SCHEDULE.items():
        assert rule.record_class is record_class
        assert rule.clock.strip()
        assert rule.citation.strip()


@pytest.mark.obligation("USE-3")
def test_periods_no_rule_names_are_marked_as_policy() -> None:
    assert RETENTION_SCHEDULE[RecordClass.PAYMENT].basis is Basis.POLICY
    assert RETENTION_SCHEDULE[RecordClass.CREDIT_REPORTING].basis is Basis.POLICY
    assert RETENTION_SCHEDULE[RecordClass.APPLICATION].basis is Basis.REGULATION


@pytest.mark.obligation("RUL-2")
def test_hold_names_are_valid_retention_holds_of_the_envelope() -> None:
    field = EventEnvelope.model_json_schema()["properties"]["retention_hold"]
    constraint = next(s for s in field["anyOf"] if s.get("type") == "string")
    pattern = re.compile(constraint["pattern"])
    for record_class in RecordClass:
        hold = hold_for(record_class)
        assert pattern.fullmatch(hold), hold
        assert len(hold) <= constraint["maxLength"]


@pytest.mark.obligation("RUL-2")
def test_each_class_has_its_own_hold_so_each_is_erased_when_its_own_ends() -> None:
    holds = [hold_for(c) for c in RecordClass]
    assert len(set(holds)) == len(holds)


# --- month arithmetic ----------------------------------------------------------------------


@pytest.mark.obligation("RUL-2")
@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        # 31 January + 25 months: February has no 31st, so its last day (2026: 28th).
        (datetime(2024, 1, 31, tzinfo=UTC), 25, datetime(2026, 2, 28, tzinfo=UTC)),
        # ... and 29th in a leap year.
        (datetime(2022, 1, 31, tzinfo=UTC), 25, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), 60, datetime(2029, 2, 28, tzinfo=UTC)),
        (datetime(2024, 11, 15, 9, 5, tzinfo=UTC), 2, datetime(2025, 1, 15, 9, 5, tzinfo=UTC)),
        (datetime(2024, 12, 31, tzinfo=UTC), 12, datetime(2025, 12, 31, tzinfo=UTC)),
    ],
)
def test_months_are_added_on_the_calendar(start: datetime, months: int, end: datetime) -> None:
    assert add_months(start, months) == end


@pytest.mark.obligation("RUL-2")
def test_an_application_s_hold_ends_25_months_after_the_notice() -> None:
    assert hold_ends(RecordClass.APPLICATION, datetime(2024, 1, 31, 12, tzinfo=UTC)) == (
        datetime(2026, 2, 28, 12, tzinfo=UTC)
    )


@pytest.mark.obligation("RUL-2")
def test_an_account_s_hold_ends_five_years_after_it_closed() -> None:
    assert hold_ends(RecordClass.ACCOUNT, NOTICE_DAY) == datetime(2030, 3, 10, 14, 30, tzinfo=UTC)


def test_the_clock_keeps_its_timezone() -> None:
    seoul = timezone(timedelta(hours=9))
    end = hold_ends(RecordClass.ADVERSE_ACTION, datetime(2025, 1, 31, 23, 0, tzinfo=seoul))
    assert end == datetime(2027, 2, 28, 23, 0, tzinfo=seoul)
    assert end.utcoffset() == timedelta(hours=9)


def test_a_clock_without_a_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        hold_ends(RecordClass.PAYMENT, datetime(2025, 1, 1))


# --- classification ------------------------------------------------------------------------


@pytest.mark.obligation("RUL-2")
def test_every_registered_loans_event_type_is_classified_or_listed_as_not_retained() -> None:
    loans_types = {t for t in REGISTRY.types() if t.startswith("loans.")}
    assert loans_types  # the catalog was imported
    classified = set(EVENT_RECORD_CLASSES) | {NOTICE_EVENT_TYPE}
    assert loans_types - classified == set(), "classify the new event type for retention"
    assert classified - loans_types == set(), "the table names an event type that does not exist"


@pytest.mark.obligation("RUL-2")
def test_every_notice_kind_is_classified() -> None:
    assert set(NOTICE_RECORD_CLASSES) == set(NoticeKind)


@pytest.mark.obligation("RUL-2")
@pytest.mark.parametrize(
    ("event_type", "record_class"),
    [
        ("loans.LoanApplicationReceived", RecordClass.APPLICATION),
        ("loans.ApplicationAssessed", RecordClass.APPLICATION),
        ("loans.AdverseActionNoticeIssued", RecordClass.ADVERSE_ACTION),
        ("loans.LoanOffered", RecordClass.ACCOUNT),
        ("loans.LoanClosed", RecordClass.ACCOUNT),
        ("loans.PaymentReceived", RecordClass.PAYMENT),
        ("loans.AccountFurnished", RecordClass.CREDIT_REPORTING),
        ("loans.BureauDisputeAnswered", RecordClass.CREDIT_REPORTING),
        ("loans.FurnishingFileProduced", None),
    ],
)
def test_loans_records_fall_in_the_class_the_rules_name(
    event_type: str, record_class: RecordClass | None
) -> None:
    assert record_class_of(event_type) is record_class


@pytest.mark.obligation("RUL-2")
def test_a_notice_is_classified_by_its_kind() -> None:
    assert record_class_of(NOTICE_EVENT_TYPE, NoticeKind.ADVERSE_ACTION) is (
        RecordClass.ADVERSE_ACTION
    )
    assert record_class_of(NOTICE_EVENT_TYPE, NoticeKind.OFFER) is RecordClass.APPLICATION
    assert record_class_of(NOTICE_EVENT_TYPE, NoticeKind.PAYMENT_DUE) is None
    with pytest.raises(UnclassifiedEvent):
        record_class_of(NOTICE_EVENT_TYPE)


def test_an_unknown_event_type_is_refused_rather_than_dropped() -> None:
    with pytest.raises(UnclassifiedEvent):
        record_class_of("loans.SomethingNew")


# --- holds on cancellation -----------------------------------------------------------------


@pytest.mark.obligation("RUL-2")
def test_each_hold_ends_at_the_latest_end_among_its_records() -> None:
    holds = holds_on_cancellation(
        SUBJECT,
        [
            ClockedRecord("loans.PaymentReceived", datetime(2025, 6, 1, tzinfo=UTC)),
            ClockedRecord("loans.PaymentReceived", datetime(2026, 4, 30, tzinfo=UTC)),
            ClockedRecord("loans.PaymentMissed", datetime(2025, 12, 1, tzinfo=UTC)),
            ClockedRecord("loans.LoanApplicationReceived", datetime(2024, 1, 31, tzinfo=UTC)),
            ClockedRecord("loans.ApplicationAssessed", datetime(2023, 5, 2, tzinfo=UTC)),
        ],
    )
    assert holds == [
        Hold(SUBJECT, "loan-payment-records", datetime(2031, 4, 30, tzinfo=UTC)),
        Hold(SUBJECT, "reg-b-applications", datetime(2026, 2, 28, tzinfo=UTC)),
    ]


def test_a_record_may_be_a_plain_event_type_and_clock_pair() -> None:
    assert holds_on_cancellation(SUBJECT, [("loans.LoanClosed", NOTICE_DAY)]) == [
        Hold(SUBJECT, "bsa-account-records", datetime(2030, 3, 10, 14, 30, tzinfo=UTC))
    ]


@pytest.mark.obligation("RUL-2")
def test_a_class_with_no_records_gets_no_hold() -> None:
    holds = holds_on_cancellation(
        SUBJECT,
        [
            ClockedRecord("loans.LoanApplicationReceived", NOTICE_DAY),
            ClockedRecord("loans.FurnishingFileDelivered", NOTICE_DAY),
            ClockedRecord(NOTICE_EVENT_TYPE, NOTICE_DAY, NoticeKind.RECEIPT),
        ],
    )
    assert [h.hold for h in holds] == ["reg-b-applications"]
    assert holds_on_cancellation(SUBJECT, []) == []


@pytest.mark.obligation("RUL-2")
def test_an_adverse_action_notice_is_held_with_the_adverse_action_record() -> None:
    holds = holds_on_cancellation(
        SUBJECT,
        [
            ClockedRecord("loans.AdverseActionNoticeIssued", NOTICE_DAY),
            ClockedRecord(NOTICE_EVENT_TYPE, NOTICE_DAY, NoticeKind.ADVERSE_ACTION),
        ],
    )
    assert holds == [
        Hold(SUBJECT, "reg-b-adverse-action", datetime(2027, 4, 10, 14, 30, tzinfo=UTC))
    ]


# --- when holds end ------------------------------------------------------------------------


@pytest.mark.obligation("RUL-2")
def test_a_hold_is_due_exactly_at_its_end_and_not_a_moment_before() -> None:
    end = datetime(2027, 4, 10, 14, 30, tzinfo=UTC)
    hold = Hold(SUBJECT, "reg-b-adverse-action", end)
    assert due([hold], end - timedelta(microseconds=1)) == []
    assert due([hold], end) == [hold]
    assert due([hold], end + timedelta(days=1)) == [hold]


@pytest.mark.obligation("RUL-2")
def test_only_the_holds_whose_end_has_come_are_due() -> None:
    early = Hold(SUBJECT, "reg-b-applications", datetime(2026, 2, 28, tzinfo=UTC))
    late = Hold(SUBJECT, "bsa-account-records", datetime(2031, 1, 1, tzinfo=UTC))
    assert due([early, late], datetime(2027, 1, 1, tzinfo=UTC)) == [early]


def test_due_compares_instants_across_timezones() -> None:
    hold = Hold(SUBJECT, "fcra-furnishing", datetime(2030, 1, 1, tzinfo=UTC))
    # 08:59 in Seoul on 1 January 2030 is still 31 December 2029 in UTC.
    seoul = timezone(timedelta(hours=9))
    assert due([hold], datetime(2030, 1, 1, 8, 59, tzinfo=seoul)) == []
    assert due([hold], datetime(2030, 1, 1, 9, 0, tzinfo=seoul)) == [hold]


def test_due_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone"):
        due([], datetime(2030, 1, 1))


def test_the_retention_rules_are_marked_as_where_rul_2_is_enforced() -> None:
    where = {e.where for e in enforced_by().get("RUL-2", [])}
    assert "expensura_loans.retention.domain:holds_on_cancellation" in where
    assert "expensura_loans.retention.domain:due" in where
