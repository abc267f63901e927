"""Customer notices in memory: the states a notice goes through, the steps each state
allows, the channels it goes out on (the customer's order, or the default), each channel's
retry policy with its back-off, and the fall-back to the next channel."""

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


EMAIL_ONLY = domain.Reach((NoticeChannel.EMAIL,), frozenset({NoticeChannel.EMAIL}))
EVERY = domain.Reach(domain.DEFAULT_ORDER, frozenset(NoticeChannel))
EMAIL = domain.CHANNEL_POLICIES[NoticeChannel.EMAIL]


def _attempt(
    notice: CustomerNotice, now: datetime = AT, reach: domain.Reach = EMAIL_ONLY
) -> domain.Step:
    return domain.begin_attempt(notice, now, restriction=None, body_erased=False, reach=reach)


def test_backoff_doubles_from_thirty_seconds_and_never_exceeds_an_hour() -> None:
    waits = {k: EMAIL.backoff(k) for k in (1, 2, 3, 4, 7, 8, 10_000)}
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
        EMAIL.backoff(0)


def test_at_most_five_attempts_by_email() -> None:
    assert [EMAIL.may_retry(n) for n in range(7)] == [True] * 5 + [False] * 2


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
    step = domain.delivered(ongoing, "provider-ref")
    assert step.notice.state is NoticeState.COMPLETED and step.notice.final
    assert step.attempts == (
        domain.Attempt(
            ongoing.notice_id, 1, NoticeChannel.EMAIL, NoticeState.COMPLETED, None, "provider-ref"
        ),
    )
    assert step.notice.next_attempt_at is None
    assert step.event == CustomerNoticeDelivered(
        notice_id=ongoing.notice_id,
        kind=NoticeKind.PAYMENT_DUE,
        channel=NoticeChannel.EMAIL,
        attempts=1,
    )
    with pytest.raises(IllegalTransition):
        _attempt(step.notice, AT + timedelta(days=1))


def test_no_channel_that_can_reach_the_customer_fails_at_once_without_a_retry() -> None:
    notice = _planned()
    nothing = domain.Reach(domain.DEFAULT_ORDER, frozenset())
    step = _attempt(notice, reach=nothing)
    assert not step.send and step.attempts == ()
    assert step.notice.state is NoticeState.FAILED
    assert step.notice.next_attempt_at is None  # never due again
    assert step.event == CustomerNoticeDeliveryFailed(
        notice_id=notice.notice_id,
        reason="no channel can reach the customer",
        attempts=0,
        will_retry=False,
    )


def test_an_erased_or_stopped_subject_needs_no_notice_and_nothing_is_recorded() -> None:
    notice = _planned()
    erased = domain.begin_attempt(notice, AT, restriction=None, body_erased=True, reach=EVERY)
    stopped = domain.begin_attempt(
        notice, AT, restriction=Restriction.PROCESSING_STOPPED, body_erased=False, reach=EVERY
    )
    for step, reason in ((erased, domain.SUBJECT_ERASED), (stopped, domain.PROCESSING_STOPPED)):
        assert not step.send and step.event is None
        assert step.notice.state is NoticeState.NOT_NEEDED
        assert step.notice.reason == reason and step.notice.final


def test_failed_emails_are_retried_with_back_off_until_the_fifth_then_fail_for_good() -> None:
    notice, now = _planned(), AT
    seen: list[tuple[int, bool]] = []
    while True:
        step = _attempt(notice, now)
        assert step.notice.attempts == len(seen) + 1
        step = domain.undelivered(
            step.notice,
            "mail undelivered (offer: ConnectionError)",
            now,
            permanent=False,
            reach=EMAIL_ONLY,
        )
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
    assert notice.reason == domain.EVERY_CHANNEL_FAILED


def test_an_attempt_whose_lease_ran_out_is_made_again_while_attempts_remain() -> None:
    ongoing = _attempt(_planned()).notice
    with pytest.raises(IllegalTransition):  # the lease still runs: a sender holds it
        _attempt(ongoing, AT + timedelta(minutes=1))
    again = _attempt(ongoing, AT + domain.SEND_LEASE)
    assert again.send and again.notice.attempts == 2
    # the interrupted attempt is recorded as failed, the new one begins
    assert [(a.number, a.state, a.reason) for a in again.attempts] == [
        (1, NoticeState.FAILED, domain.INTERRUPTED),
        (2, NoticeState.ONGOING, None),
    ]
    last = CustomerNotice(
        ongoing.notice_id,
        SUBJECT,
        ongoing.kind,
        ongoing.title,
        NoticeState.ONGOING,
        5,
        None,
        AT,
        channel=NoticeChannel.EMAIL,
        channel_attempts=5,
    )
    given_up = _attempt(last, AT)
    assert not given_up.send and given_up.notice.state is NoticeState.FAILED
    assert given_up.event == CustomerNoticeDeliveryFailed(
        notice_id=last.notice_id,
        reason=domain.INTERRUPTED,
        attempts=5,
        will_retry=False,
        channel=NoticeChannel.EMAIL,
    )


def test_only_the_declared_transitions_are_allowed() -> None:
    notice = _planned()
    with pytest.raises(IllegalTransition):
        domain.delivered(notice)  # planned → completed: nothing was sent
    with pytest.raises(IllegalTransition):
        domain.undelivered(notice, "mail undelivered", AT, permanent=False, reach=EVERY)
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


# --- channels: the customer's order, each channel's policy, the fall-back -----------------

E, P, S, L = NoticeChannel.EMAIL, NoticeChannel.PUSH, NoticeChannel.SMS, NoticeChannel.LETTER


def _fail(
    step: domain.Step, now: datetime, reach: domain.Reach, *, permanent: bool = False
) -> domain.Step:
    return domain.undelivered(
        step.notice, "provider said no", now, permanent=permanent, reach=reach
    )


def test_without_a_choice_the_order_is_email_push_sms_letter() -> None:
    assert domain.channel_order(None) == (E, P, S, L)
    assert domain.channel_order([]) == (E, P, S, L)


def test_the_customers_choice_is_the_order_and_the_only_channels_used() -> None:
    assert domain.channel_order([S, E, S]) == (S, E)
    reach = domain.Reach.of([S, E], {"email": "a@example.com", "phone": "+14155550100"})
    assert reach.usable == (S, E)
    assert reach.next_channel([]) is S and reach.next_channel([S]) is E
    assert reach.next_channel([S, E]) is None


def test_a_channel_without_an_address_or_a_provider_is_skipped() -> None:
    contacts = {
        "email": "a@example.com",
        "phone": None,
        "push_token": REDACTED,  # its key destroyed: no address
        "mailing_address": "Ann Lee\n12 Elm Street\nSpringfield, IL 62704",
    }
    assert domain.Reach.of(None, contacts).usable == (E, L)
    assert domain.Reach.of(None, contacts, frozenset({E})).usable == (E,)
    assert domain.Reach.of(None, {}).usable == ()


def test_each_channel_has_its_own_attempts_and_backoff() -> None:
    policies = domain.CHANNEL_POLICIES
    assert {c: p.max_attempts for c, p in policies.items()} == {E: 5, P: 3, S: 3, L: 3}
    assert [policies[S].backoff(k) for k in (1, 2, 3, 9)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(minutes=30),  # capped
    ]
    assert policies[P].backoff(1) == timedelta(seconds=30)
    assert policies[L].backoff(1) == timedelta(minutes=10)


def test_a_refused_email_falls_back_to_push_at_once() -> None:
    step = _attempt(_planned(), AT, EVERY)
    assert step.notice.channel is E
    failed = _fail(step, AT, EVERY, permanent=True)
    assert failed.notice.state is NoticeState.FAILED
    assert failed.notice.channel is P and failed.notice.exhausted == (E,)
    assert failed.notice.next_attempt_at == AT  # no back-off before another channel
    assert failed.event == CustomerNoticeDeliveryFailed(
        notice_id=step.notice.notice_id,
        reason="provider said no",
        attempts=1,
        will_retry=True,
        channel=E,
        next_channel=P,
    )
    assert failed.attempts == (
        domain.Attempt(step.notice.notice_id, 1, E, NoticeState.FAILED, "provider said no"),
    )
    push = _attempt(failed.notice, AT, EVERY)
    assert push.send and push.notice.channel is P
    assert push.notice.attempts == 2 and push.notice.channel_attempts == 1
    done = domain.delivered(push.notice, "projects/x/messages/1")
    assert isinstance(done.event, CustomerNoticeDelivered)
    assert done.event.channel is P and done.event.attempts == 2


def test_a_transient_failure_is_retried_on_the_channel_then_falls_back_after_its_last() -> None:
    reach = domain.Reach((S, L), frozenset({S, L}))
    notice, now = _planned(), AT
    trail: list[tuple[NoticeChannel | None, NoticeChannel | None, timedelta]] = []
    for _ in range(3):
        step = _attempt(notice, now, reach)
        assert step.notice.channel is S
        failed = _fail(step, now, reach)
        assert isinstance(failed.event, CustomerNoticeDeliveryFailed)
        assert failed.notice.next_attempt_at is not None
        trail.append(
            (failed.event.channel, failed.event.next_channel, failed.notice.next_attempt_at - now)
        )
        notice, now = failed.notice, failed.notice.next_attempt_at
    assert trail == [
        (S, S, timedelta(minutes=1)),
        (S, S, timedelta(minutes=2)),
        (S, L, timedelta(0)),  # the third SMS failed: the letter, at once
    ]
    letter = _attempt(notice, now, reach)
    assert letter.notice.channel is L and letter.notice.channel_attempts == 1
    assert letter.notice.attempts == 4


def test_when_every_channel_failed_the_notice_fails_for_good() -> None:
    reach = domain.Reach((E, P), frozenset({E, P}))
    email = _attempt(_planned(), AT, reach)
    push = _attempt(_fail(email, AT, reach, permanent=True).notice, AT, reach)
    last = _fail(push, AT, reach, permanent=True)
    assert last.notice.state is NoticeState.FAILED and last.notice.next_attempt_at is None
    assert last.notice.reason == domain.EVERY_CHANNEL_FAILED
    assert last.notice.exhausted == (E, P)
    assert isinstance(last.event, CustomerNoticeDeliveryFailed)
    assert not last.event.will_retry and last.event.next_channel is None
    assert last.event.channel is P and last.event.attempts == 2


def test_a_channel_the_customer_dropped_meanwhile_is_not_retried() -> None:
    both = domain.Reach((E, S), frozenset({E, S}))
    failed = _fail(_attempt(_planned(), AT, both), AT, both)  # e-mail down: retry e-mail
    assert failed.notice.channel is E and failed.notice.next_attempt_at is not None
    sms_only = domain.Reach((S,), frozenset({E, S}))  # then they chose SMS alone
    step = _attempt(failed.notice, failed.notice.next_attempt_at, sms_only)
    assert step.send and step.notice.channel is S and step.notice.exhausted == (E,)


def test_sms_and_push_carry_the_notice_cut_to_fit_email_and_letter_carry_it_whole() -> None:
    body = "x" * 5000
    assert domain.render(E, "Title", body) == domain.Rendered("Title", body)
    assert domain.render(L, "Title", body).text == body
    sms = domain.render(S, "Title", body).text
    push = domain.render(P, "Title", body).text
    assert len(sms) <= 1600 and sms.startswith("Title: x") and sms.endswith(domain.CONTINUED)
    assert len(push) <= 1000 and push.endswith(domain.CONTINUED)
    assert domain.render(S, "Title", "short").text == "Title: short"
