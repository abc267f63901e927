"""Loans records under their retention holds, in memory (RUL-2, USE-3): the hold each event
type is appended under, that every loans append goes through the one envelope that sets it,
and when each held record's clock starts on erasure."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

import expensura_events.catalog  # noqa: F401  (registers every event type)
import expensura_loans
from expensura_events.catalog.loans import LoanApplicationReceived
from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.catalog.loans_servicing import (
    LoanClosed,
    PaymentMissed,
    PaymentReceived,
)
from expensura_events.catalog.platform import RetentionHoldEnded
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.registry import REGISTRY
from expensura_events.vocabulary import Purpose
from expensura_loans.retention.domain import (
    ClockedRecord,
    RecordClass,
    clocked_records,
    hold_ends,
    hold_for,
    holds_on_cancellation,
    release_reason,
    retention_hold_of,
)

pytestmark = pytest.mark.obligation("RUL-2", "USE-3")

APPLICATION = "reg-b-applications"
ADVERSE_ACTION = "reg-b-adverse-action"
ACCOUNT = "bsa-account-records"
PAYMENT = "loan-payment-records"
FURNISHING = "fcra-furnishing"

# Written out from the README's retention table, not derived from the code under test.
EXPECTED_HOLDS: dict[str, str | None] = {
    "loans.LoanApplicationReceived": APPLICATION,
    "loans.LoanApplicationRefused": APPLICATION,
    "loans.CreditReportRequested": APPLICATION,
    "loans.ApplicationAssessed": APPLICATION,
    "loans.AssessmentNotPermitted": APPLICATION,
    "loans.AdverseActionNoticeIssued": ADVERSE_ACTION,
    "loans.RiskSignalRaised": APPLICATION,
    "loans.ApplicationHeldForReview": APPLICATION,
    "loans.RiskReviewConcluded": APPLICATION,
    "loans.LoanOffered": ACCOUNT,
    "loans.OfferAccepted": ACCOUNT,
    "loans.LoanDisbursed": ACCOUNT,
    "loans.LoanBecameDelinquent": ACCOUNT,
    "loans.LoanPaidOff": ACCOUNT,
    "loans.LoanChargedOff": ACCOUNT,
    "loans.LoanClosed": ACCOUNT,
    "loans.BalanceDisputeOpened": ACCOUNT,  # on the loan's stream: its clock is the loan's
    "loans.PaymentReceived": PAYMENT,
    "loans.PaymentMissed": PAYMENT,
    "loans.AccountFurnished": FURNISHING,
    "loans.BureauDisputeReceived": FURNISHING,
    "loans.BureauDisputeAnswered": FURNISHING,
    "loans.FurnishingFileProduced": None,
    "loans.FurnishingFileDelivered": None,
}
EXPECTED_NOTICE_HOLDS: dict[NoticeKind, str | None] = {
    NoticeKind.ADVERSE_ACTION: ADVERSE_ACTION,
    NoticeKind.OFFER: APPLICATION,
    NoticeKind.PAYMENT_DUE: None,
    NoticeKind.RECEIPT: None,
    NoticeKind.LATE_NOTICE: None,
}


def instance(event_type: str, **fields: Any) -> DomainEvent:
    """An event of the type, unvalidated: the hold depends on its type (and a notice's kind)."""
    return REGISTRY.model(event_type).model_construct(**fields)


# --- the hold each record is appended under ------------------------------------------------


def test_the_expectations_cover_every_registered_loans_event_type() -> None:
    loans_types = {t for t in REGISTRY.types() if t.startswith("loans.")}
    assert loans_types == set(EXPECTED_HOLDS) | {"loans.CustomerNoticeRequested"}
    assert set(EXPECTED_NOTICE_HOLDS) == set(NoticeKind)


@pytest.mark.parametrize(("event_type", "hold"), sorted(EXPECTED_HOLDS.items()))
def test_each_loans_event_type_is_appended_under_the_hold_its_class_demands(
    event_type: str, hold: str | None
) -> None:
    assert retention_hold_of(instance(event_type)) == hold


@pytest.mark.parametrize(("kind", "hold"), sorted(EXPECTED_NOTICE_HOLDS.items()))
def test_a_customer_notice_is_held_by_its_kind(kind: NoticeKind, hold: str | None) -> None:
    assert retention_hold_of(instance("loans.CustomerNoticeRequested", kind=kind)) == hold


def _calls_rt_envelope(tree: ast.AST) -> list[int]:
    """Lines calling `<something>.envelope(`: the runtime's envelope, not loans' own."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "envelope"
    ]


def test_every_loans_append_goes_through_the_envelope_that_sets_the_hold() -> None:
    """A module building its envelopes with `rt.envelope` directly would append records
    without their hold, sealed with the subject's key: erased with the subject, against the
    retention the law requires. Build them with `retention.service.record_envelope`."""
    root = Path(expensura_loans.__file__).parent
    direct = {
        str(path.relative_to(root)): lines
        for path in sorted(root.rglob("*.py"))
        if (lines := _calls_rt_envelope(ast.parse(path.read_text())))
    }
    assert direct == {"retention/service.py": direct.get("retention/service.py", [])}
    assert len(direct["retention/service.py"]) == 1  # record_envelope itself


# --- the clocks on erasure -----------------------------------------------------------------

SUBJECT = "subject-1"
ERASED = datetime(2026, 6, 1, 12, tzinfo=UTC)


def logged(payload: DomainEvent, at: datetime, stream: str, *, held: bool = True) -> EventEnvelope:
    hold = retention_hold_of(payload) if held else None
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="loans",
        stream_id=stream,
        stream_version=1,
        subject_id=SUBJECT,
        actor=Actor.system("tests"),
        purpose=Purpose.LOAN_SERVICE_PROVISION,
        correlation_id=new_event_id(),
        occurred_at=at,
        retention_hold=hold,
        payload=payload,
    )


LOAN = uuid.uuid4()


def offered() -> DomainEvent:
    return instance("loans.LoanOffered", loan_id=LOAN)


def test_an_account_s_clock_starts_when_its_loan_closed() -> None:
    closed_at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    records = [
        logged(offered(), datetime(2025, 1, 5, tzinfo=UTC), f"loan-{LOAN}"),
        logged(LoanClosed(loan_id=LOAN, closed_on=closed_at.date()), closed_at, f"loan-{LOAN}"),
    ]
    assert [r.clock_started for r in clocked_records(records, ERASED)] == [closed_at, closed_at]


def test_a_loan_not_closed_starts_its_clock_with_the_erasure() -> None:
    records = [logged(offered(), datetime(2025, 1, 5, tzinfo=UTC), f"loan-{LOAN}")]
    [clocked] = clocked_records(records, ERASED)
    assert clocked == ClockedRecord("loans.LoanOffered", ERASED, None)


def test_a_missed_payment_s_clock_starts_on_its_due_date() -> None:
    missed = PaymentMissed(loan_id=LOAN, installment_number=1, due_date=date(2025, 2, 5))
    [clocked] = clocked_records([logged(missed, ERASED, f"loan-{LOAN}")], ERASED)
    assert clocked.clock_started == datetime(2025, 2, 5, tzinfo=UTC)


def test_a_payment_and_a_notice_start_their_clocks_when_recorded() -> None:
    paid_at = datetime(2025, 3, 5, 10, tzinfo=UTC)
    payment = instance("loans.PaymentReceived", loan_id=LOAN)
    assert isinstance(payment, PaymentReceived)
    notice = CustomerNoticeRequested(
        notice_id=uuid.uuid4(),
        kind=NoticeKind.ADVERSE_ACTION,
        title="Your loan application",
        body="reasons",
    )
    clocked = clocked_records(
        [logged(payment, paid_at, f"loan-{LOAN}"), logged(notice, paid_at, "application-1")],
        ERASED,
    )
    assert clocked == [
        ClockedRecord("loans.PaymentReceived", paid_at, None),
        ClockedRecord("loans.CustomerNoticeRequested", paid_at, NoticeKind.ADVERSE_ACTION),
    ]


def test_records_under_no_hold_are_not_held_again() -> None:
    """Records appended before holds existed (or of a class not retained) were sealed with
    the subject's key: they are erased with it, and get no hold."""
    received = instance("loans.LoanApplicationReceived")
    assert isinstance(received, LoanApplicationReceived)
    ended = RetentionHoldEnded(hold=PAYMENT, reason="over")
    records = [
        logged(received, ERASED, "application-1", held=False),
        logged(ended, ERASED, "retention-x", held=False),  # the library's own: never held
    ]
    assert clocked_records(records, ERASED) == []


def test_the_holds_of_an_erased_borrower_end_at_the_latest_end_of_each_class() -> None:
    decided = datetime(2025, 1, 5, 12, tzinfo=UTC)
    paid = datetime(2025, 3, 5, tzinfo=UTC)
    records = [
        logged(instance("loans.LoanApplicationReceived"), datetime(2025, 1, 4, tzinfo=UTC), "a"),
        logged(instance("loans.ApplicationAssessed"), decided, "a"),
        logged(offered(), decided, f"loan-{LOAN}"),
        logged(instance("loans.PaymentReceived", loan_id=LOAN), paid, f"loan-{LOAN}"),
    ]
    holds = holds_on_cancellation(SUBJECT, clocked_records(records, ERASED))
    assert {h.hold: h.ends_at for h in holds} == {
        APPLICATION: datetime(2027, 2, 5, 12, tzinfo=UTC),  # 25 months after the decision
        ACCOUNT: hold_ends(RecordClass.ACCOUNT, ERASED),
        PAYMENT: datetime(2030, 3, 5, tzinfo=UTC),
    }


def test_an_erasure_time_without_a_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        clocked_records([], datetime(2026, 1, 1))


def test_a_hold_s_end_names_its_period_and_rule() -> None:
    assert release_reason(hold_for(RecordClass.APPLICATION)) == (
        "retention period over: 25 months, ECOA / Reg B, 12 CFR 1002.12(b)(1)"
    )
    assert release_reason("a-hold-placed-by-hand") == "retention period over"
