"""Customer notices in memory: the states a notice goes through, the steps each state
allows, and the retry policy (at most five attempts, back-off doubling from 30 s, never
more than an hour)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from expensura_events.catalog.incident_notices import (
    CustomerNoticeDelivered,
    CustomerNoticeDeliveryFailed,
    NoticeChannel,
)
from expensura_events.catalog.loans_notices import NoticeKind
from expensura_events.envelope import REDACTED
from expensura_events.privacy.restriction_rules import Restriction
from expensura_incident.notices import domain
from expensura_incident.notices.domain import (
    CustomerNotice,
    IllegalTransition,
    NoticeState,
    NoticeWithoutSubject,
)

pytestmark = pytest.mark.obligation("USE-10")

SUBJECT = str(uuid.uuid4())
AT = datetime(2026, 12, 12, 9, tzinfo=UTC)


def _planned(at: datetime = AT) -> CustomerNotice:
    return domain.plan(uuid.uuid4(), SUBJECT, NoticeKind.PAYMENT_DUE, "Your payment", "Pay", at)


def _attempt(notice: CustomerNotice, now: datetime = AT) -> domain.Step:
    return domain.begin_attempt(notice, now, restriction=None, body_erased=False, has_email=True)


def test_backoff_doubles_from_thirty_seconds_and_never_exceeds_an_hour() -> None:
    waits = {k: domain.next_attempt_at(k, AT) - AT for k in (1, 2, 3, 4, 7, 8, 10_000)}
    assert waits == {
        1: timedelta(seconds=30),
        2: timedelta(minutes=1),
        3: timedelta(minutes=2),
        4: timedelta(minutes=4),
        7: timedelta(minutes=32),
        8: timedelta(hours=1),  # 64 minutes, capped
        10_000: timedelta(hours=1),
    }
    with pytest.raises(ValueError):
        domain.next_attempt_at(0, AT)


def test_at_most_five_attempts() -> None:
    assert [domain.may_retry(n) for n in range(7)] == [True] * 5 + [False] * 2


def test_a_requested_notice_is_planned_and_due_at_once() -> None:
    notice = _planned()
    assert notice.state is NoticeState.PLANNED
    assert notice.attempts == 0
    assert domain.due(notice, AT) and not domain.due(notice, AT - timedelta(seconds=1))


def test_a_notice_whose_body_reads_redacted_is_not_needed() -> None:
    notice = domain.plan(uuid.uuid4(), SUBJECT, NoticeKind.OFFER, "Your offer", REDACTED, AT)
    assert notice.state is NoticeState.NOT_NEEDED
    assert notice.reason == domain.SUBJECT_ERASED
    assert notice.final and not domain.due(notice, AT + timedelta(days=1))


def test_a_notice_without_a_customer_is_refused() -> None:
    with pytest.raises(NoticeWithoutSubject):
        domain.plan(uuid.uuid4(), None, NoticeKind.OFFER, "Your offer", "Body", AT)


def test_an_attempt_makes_the_notice_ongoing_under_a_lease_and_records_nothing_yet() -> None:
    step = _attempt(_planned())
    assert step.send and step.event is None
    assert step.notice.state is NoticeState.ONGOING
    assert step.notice.attempts == 1
    assert step.notice.next_attempt_at == AT + domain.SEND_LEASE


def test_delivery_completes_the_notice_and_records_the_channel_and_attempts() -> None:
    ongoing = _attempt(_planned()).notice
    step = domain.delivered(ongoing)
    assert step.notice.state is NoticeState.COMPLETED and step.notice.final
    assert step.notice.next_attempt_at is None
    assert step.event == CustomerNoticeDelivered(
        notice_id=ongoing.notice_id,
        kind=NoticeKind.PAYMENT_DUE,
        channel=NoticeChannel.EMAIL,
        attempts=1,
    )
    with pytest.raises(IllegalTransition):
        _attempt(step.notice, AT + timedelta(days=1))


def test_no_email_on_file_fails_at_once_without_a_retry() -> None:
    notice = _planned()
    step = domain.begin_attempt(notice, AT, restriction=None, body_erased=False, has_email=False)
    assert not step.send
    assert step.notice.state is NoticeState.FAILED
    assert step.notice.next_attempt_at is None  # never due again
    assert step.event == CustomerNoticeDeliveryFailed(
        notice_id=notice.notice_id, reason="no e-mail on file", attempts=0, will_retry=False
    )


def test_an_erased_or_stopped_subject_needs_no_notice_and_nothing_is_recorded() -> None:
    notice = _planned()
    erased = domain.begin_attempt(notice, AT, restriction=None, body_erased=True, has_email=True)
    stopped = domain.begin_attempt(
        notice, AT, restriction=Restriction.PROCESSING_STOPPED, body_erased=False, has_email=True
    )
    for step, reason in ((erased, domain.SUBJECT_ERASED), (stopped, domain.PROCESSING_STOPPED)):
        assert not step.send and step.event is None
        assert step.notice.state is NoticeState.NOT_NEEDED
        assert step.notice.reason == reason and step.notice.final


def test_failed_attempts_are_retried_with_back_off_until_the_fifth() -> None:
    notice, now = _planned(), AT
    seen: list[tuple[int, bool]] = []
    while True:
        step = _attempt(notice, now)
        assert step.notice.attempts == len(seen) + 1
        step = domain.undelivered(step.notice, "mail undelivered (offer: ConnectionError)", now)
        assert isinstance(step.event, CustomerNoticeDeliveryFailed)
        seen.append((step.event.attempts, step.event.will_retry))
        notice = step.notice
        assert notice.state is NoticeState.FAILED
        if notice.next_attempt_at is None:
            break
        assert notice.next_attempt_at - now == timedelta(seconds=30 * 2 ** (len(seen) - 1))
        assert not domain.due(notice, now)
        now = notice.next_attempt_at
    assert seen == [(1, True), (2, True), (3, True), (4, True), (5, False)]


def test_an_attempt_whose_lease_ran_out_is_made_again_while_attempts_remain() -> None:
    ongoing = _attempt(_planned()).notice
    with pytest.raises(IllegalTransition):  # the lease still runs: a sender holds it
        _attempt(ongoing, AT + timedelta(minutes=1))
    again = _attempt(ongoing, AT + domain.SEND_LEASE)
    assert again.send and again.notice.attempts == 2
    last = CustomerNotice(
        ongoing.notice_id, SUBJECT, ongoing.kind, ongoing.title, NoticeState.ONGOING, 5, None, AT
    )
    given_up = _attempt(last, AT)
    assert not given_up.send and given_up.notice.state is NoticeState.FAILED
    assert given_up.event == CustomerNoticeDeliveryFailed(
        notice_id=last.notice_id, reason=domain.INTERRUPTED, attempts=5, will_retry=False
    )


def test_only_the_declared_transitions_are_allowed() -> None:
    notice = _planned()
    with pytest.raises(IllegalTransition):
        domain.delivered(notice)  # planned → completed: nothing was sent
    with pytest.raises(IllegalTransition):
        domain.undelivered(notice, "mail undelivered", AT)  # no attempt running
    assert domain.TRANSITIONS[NoticeState.COMPLETED] == frozenset()
    assert domain.TRANSITIONS[NoticeState.NOT_NEEDED] == frozenset()
    assert NoticeState.COMPLETED not in domain.TRANSITIONS[NoticeState.FAILED]
    assert {s.value for s in NoticeState} == {
        "planned",
        "ongoing",
        "completed",
        "failed",
        "not-needed",
    }
