"""Customer notices (USE-10): the life of one notice another service asked incident to
deliver, the channels it goes out on, the retry and fall-back rules, and the events each
step records. Pure: no I/O.

States (DPV's notification states), of the notice and of each attempt:

    planned ──► ongoing ──► completed
       │           │  ▲
       │           ▼  │ retry on the same channel after its back-off, or
       │         failed   fall back to the next channel at once
       ├─────────► failed          no channel the customer chose can reach them: no retry
       └─────────► not-needed      the subject is erased, or their processing stopped

Channels: the customer's choice (identity's `NotificationPreferencesSet`, followed into
incident's contacts), first choice first; without a choice, DEFAULT_ORDER (e-mail, push,
SMS, letter). A channel is usable when incident holds its address (e-mail, push token,
phone, mailing address) and its provider is configured. Each channel has its own policy
(CHANNEL_POLICIES): attempts, and a back-off doubling from its first wait up to its cap.
A transient failure (relay or provider down, 5xx, time-out) is retried on the same channel
while its attempts remain; a permanent one (the recipient refused: SMTP 5xx, an
unregistered push token, a number that takes no SMS, an undeliverable address) or the last
attempt ends the channel, and the notice falls back to the next usable channel, due at once.
`failed` with nothing due is final: every channel failed.

- `ongoing` is committed before the message is handed to the provider. A row left `ongoing`
  past its lease (the process died mid-send) is due again and retried as a new attempt:
  delivery is at-least-once across a crash inside the send itself, exactly once otherwise
  (letters are sent with an idempotency key: the provider prints a retried one once).
- `not-needed` (with its reason) is final and records no event: there is nobody to tell,
  and nothing more is written about an erased subject.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from expensura_events.catalog.incident_notices import (
    AnyNoticeKind,
    CustomerNoticeDelivered,
    CustomerNoticeDeliveryFailed,
    NoticeChannel,
)
from expensura_events.envelope import REDACTED
from expensura_events.obligations import enforces
from expensura_events.privacy.restriction_rules import Restriction, permits
from expensura_events.vocabulary import Purpose

PURPOSE = Purpose.COMMUNICATION


@dataclass(frozen=True)
class ChannelPolicy:
    """How hard one channel is tried: at most `max_attempts`, waiting `first_backoff`
    * 2^(k-1) after its k-th failure, never more than `max_backoff`."""

    max_attempts: int
    first_backoff: timedelta
    max_backoff: timedelta

    def may_retry(self, attempts: int) -> bool:
        """Whether another attempt may follow `attempts` made ones on this channel."""
        return attempts < self.max_attempts

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt on this channel."""
        if attempts < 1:
            raise ValueError("the back-off follows a failed attempt")
        # The exponent is bounded first: 2^k for a huge k would overflow a timedelta.
        wait: timedelta = min(self.first_backoff * (1 << min(attempts - 1, 32)), self.max_backoff)
        return wait


# E-mail keeps the policy it had alone (5 attempts, 30 s doubling, capped at 1 h). Push and
# SMS providers recover in minutes, so fewer, shorter waits before the next channel; a print
# API's outage is longer, and a letter is the last resort: longer waits.
CHANNEL_POLICIES: Mapping[NoticeChannel, ChannelPolicy] = {
    NoticeChannel.EMAIL: ChannelPolicy(5, timedelta(seconds=30), timedelta(hours=1)),
    NoticeChannel.PUSH: ChannelPolicy(3, timedelta(seconds=30), timedelta(minutes=10)),
    NoticeChannel.SMS: ChannelPolicy(3, timedelta(minutes=1), timedelta(minutes=30)),
    NoticeChannel.LETTER: ChannelPolicy(3, timedelta(minutes=10), timedelta(hours=6)),
}
# Without a choice of the customer's: the fastest and cheapest first, the letter last.
DEFAULT_ORDER: tuple[NoticeChannel, ...] = (
    NoticeChannel.EMAIL,
    NoticeChannel.PUSH,
    NoticeChannel.SMS,
    NoticeChannel.LETTER,
)
# The contact value each channel needs, by its name in incident's contact copy.
CHANNEL_CONTACT: Mapping[NoticeChannel, str] = {
    NoticeChannel.EMAIL: "email",
    NoticeChannel.PUSH: "push_token",
    NoticeChannel.SMS: "phone",
    NoticeChannel.LETTER: "mailing_address",
}
# What fits a channel: an SMS of up to 10 segments (Twilio's 1,600 characters), a push
# notification's visible text. E-mail and letters carry the whole notice.
TEXT_LIMITS: Mapping[NoticeChannel, int] = {NoticeChannel.SMS: 1600, NoticeChannel.PUSH: 1000}
CONTINUED = " … The whole notice is in the Expensura app, under Notices."

# How long an `ongoing` row is trusted to be in the hands of a live sender: far longer than
# one conversation with a relay or provider (each times out after 10 s), so only a crash
# outlives it.
SEND_LEASE = timedelta(minutes=5)

# Reasons: fixed phrases (they go into events and logs, so they never quote a value).
NO_CHANNEL = "no channel can reach the customer"  # no address on file for any chosen channel
EVERY_CHANNEL_FAILED = "every channel failed"
SUBJECT_ERASED = "subject erased"
PROCESSING_STOPPED = "processing stopped"
INTERRUPTED = "attempt interrupted"  # the lease of an `ongoing` row ran out


class NoticeState(StrEnum):
    PLANNED = "planned"
    ONGOING = "ongoing"
    COMPLETED = "completed"
    FAILED = "failed"
    NOT_NEEDED = "not-needed"


TRANSITIONS: dict[NoticeState, frozenset[NoticeState]] = {
    NoticeState.PLANNED: frozenset(
        {NoticeState.ONGOING, NoticeState.FAILED, NoticeState.NOT_NEEDED}
    ),
    # ongoing → ongoing: a new attempt once the lease of a crashed one ran out
    NoticeState.ONGOING: frozenset(
        {NoticeState.ONGOING, NoticeState.COMPLETED, NoticeState.FAILED, NoticeState.NOT_NEEDED}
    ),
    # failed → failed: a retry found no channel left to attempt (an address was removed)
    NoticeState.FAILED: frozenset(
        {NoticeState.ONGOING, NoticeState.FAILED, NoticeState.NOT_NEEDED}
    ),
    NoticeState.COMPLETED: frozenset(),
    NoticeState.NOT_NEEDED: frozenset(),
}


class IllegalTransition(Exception):
    """A step the notice's state does not allow (a bug, or a race another worker won)."""


class NoticeWithoutSubject(ValueError):
    """A notice request names no customer: nobody to deliver it to (the event is parked)."""


def channel_order(chosen: Sequence[NoticeChannel] | None) -> tuple[NoticeChannel, ...]:
    """The channels to try, first choice first: the customer's, or DEFAULT_ORDER if they
    made no choice (a repeated channel counts once)."""
    if not chosen:
        return DEFAULT_ORDER
    return tuple(dict.fromkeys(chosen))


@dataclass(frozen=True)
class Reach:
    """How a notice can reach its customer now: their channels in order, and which of
    them incident can use (an address on file and the provider configured)."""

    order: tuple[NoticeChannel, ...]
    reachable: frozenset[NoticeChannel]

    @classmethod
    def of(
        cls,
        chosen: Sequence[NoticeChannel] | None,
        contacts: Mapping[str, object],
        configured: frozenset[NoticeChannel] = frozenset(NoticeChannel),
    ) -> Reach:
        """From the customer's choice (None: none made), their opened contact values (a
        redacted or missing value is no address) and the channels with a provider."""
        have = {
            channel
            for channel, field in CHANNEL_CONTACT.items()
            if isinstance(value := contacts.get(field), str) and value and value != REDACTED
        }
        return cls(channel_order(chosen), frozenset(have & configured))

    @property
    def usable(self) -> tuple[NoticeChannel, ...]:
        return tuple(c for c in self.order if c in self.reachable)

    def next_channel(self, exhausted: Sequence[NoticeChannel]) -> NoticeChannel | None:
        """The first usable channel not yet exhausted; None when none is left."""
        return next((c for c in self.usable if c not in exhausted), None)


@dataclass(frozen=True)
class Rendered:
    title: str
    text: str


def render(channel: NoticeChannel, title: str, body: str) -> Rendered:
    """The notice as the channel carries it: whole by e-mail and letter; cut to the
    channel's limit on SMS and push, saying where the rest is."""
    limit = TEXT_LIMITS.get(channel)
    text = f"{title}: {body}" if channel is NoticeChannel.SMS else body
    if limit is not None and len(text) > limit:
        text = text[: limit - len(CONTINUED)].rstrip() + CONTINUED
    return Rendered(title, text)


@dataclass(frozen=True)
class CustomerNotice:
    """One notice and where its delivery stands. The body and address are not here: they
    stay sealed until the moment of sending."""

    notice_id: UUID
    subject_id: str
    kind: AnyNoticeKind
    title: str
    state: NoticeState
    attempts: int = 0  # on every channel
    reason: str | None = None
    # When it is next due: a planned one at once, a failed one after its back-off (or at
    # once, falling back), an ongoing one when its lease ends; None: nothing more to do.
    next_attempt_at: datetime | None = None
    # The channel of the current (or next) attempt, the attempts made on it, and the
    # channels given up on, in the order they were.
    channel: NoticeChannel | None = None
    channel_attempts: int = 0
    exhausted: tuple[NoticeChannel, ...] = ()

    def to(
        self,
        state: NoticeState,
        *,
        reason: str | None,
        next_attempt_at: datetime | None,
        **changes: Any,  # attempts, channel, channel_attempts, exhausted
    ) -> CustomerNotice:
        """The notice in `state`; raises IllegalTransition for a step TRANSITIONS lacks."""
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state} → {state}")
        return dataclasses.replace(
            self,
            state=state,
            reason=reason,
            next_attempt_at=next_attempt_at,
            **changes,
        )

    @property
    def final(self) -> bool:
        return not TRANSITIONS[self.state]


@dataclass(frozen=True)
class Attempt:
    """One attempt on one channel, and how it ended (DPV's states: ongoing, then completed
    or failed). `provider_ref` is the provider's id for the message (no personal data)."""

    notice_id: UUID
    number: int  # the notice's attempt count when it began: 1, 2, …
    channel: NoticeChannel
    state: NoticeState
    reason: str | None = None
    provider_ref: str | None = None


@enforces("USE-10")
def plan(
    notice_id: UUID,
    subject_id: str | None,
    kind: AnyNoticeKind,
    title: str,
    body: str,
    now: datetime,
) -> CustomerNotice:
    """A requested notice: planned, due at once; not-needed if the body reads as redacted
    (the subject's key was destroyed: they are erased, and there is nothing to send)."""
    if subject_id is None:
        raise NoticeWithoutSubject(str(notice_id))
    if body == REDACTED:
        return CustomerNotice(
            notice_id, subject_id, kind, title, NoticeState.NOT_NEEDED, reason=SUBJECT_ERASED
        )
    return CustomerNotice(notice_id, subject_id, kind, title, NoticeState.PLANNED, 0, None, now)


def due(notice: CustomerNotice, now: datetime) -> bool:
    return notice.next_attempt_at is not None and notice.next_attempt_at <= now


@dataclass(frozen=True)
class Step:
    """What the sender does next with a due notice: the notice's new state, the event to
    record with it (if any), the attempts to record (a new one, or one that ended), and
    whether to hand the message to the channel's provider now."""

    notice: CustomerNotice
    event: CustomerNoticeDelivered | CustomerNoticeDeliveryFailed | None = None
    attempts: tuple[Attempt, ...] = ()
    send: bool = False


@enforces("USE-10", "RUL-2")
def begin_attempt(
    notice: CustomerNotice,
    now: datetime,
    *,
    restriction: Restriction | None,
    body_erased: bool,
    reach: Reach,
) -> Step:
    """The step for a due notice, given what was found when it was opened: not needed (the
    subject erased or stopped), failed (no channel can reach them, or nothing is left after
    a crashed attempt), or ongoing on a channel (send it now, under a lease)."""
    if not due(notice, now):
        raise IllegalTransition(f"notice {notice.notice_id} is not due")
    if body_erased:
        return Step(notice.to(NoticeState.NOT_NEEDED, reason=SUBJECT_ERASED, next_attempt_at=None))
    if not permits(restriction, PURPOSE):
        return Step(
            notice.to(NoticeState.NOT_NEEDED, reason=PROCESSING_STOPPED, next_attempt_at=None)
        )
    ended: tuple[Attempt, ...] = ()
    if notice.state is NoticeState.ONGOING and notice.channel is not None:
        # its sender died with it: the attempt counts, and failed
        ended = (_attempt(notice, NoticeState.FAILED, INTERRUPTED),)
    channel, exhausted = notice.channel, notice.exhausted
    if channel is not None and (
        channel not in reach.usable
        or not CHANNEL_POLICIES[channel].may_retry(notice.channel_attempts)
    ):
        exhausted, channel = (*exhausted, channel), None
    if channel is None:
        channel = reach.next_channel(exhausted)
    if channel is None:
        reason = NO_CHANNEL if notice.attempts == 0 else EVERY_CHANNEL_FAILED
        failed = notice.to(
            NoticeState.FAILED, reason=reason, next_attempt_at=None, exhausted=exhausted
        )
        event = CustomerNoticeDeliveryFailed(
            notice_id=notice.notice_id,
            reason=INTERRUPTED if ended else reason,
            attempts=notice.attempts,
            will_retry=False,
            channel=notice.channel if ended else None,
        )
        return Step(failed, event, ended)
    same = channel == notice.channel
    ongoing = notice.to(
        NoticeState.ONGOING,
        reason=None,
        next_attempt_at=now + SEND_LEASE,
        attempts=notice.attempts + 1,
        channel=channel,
        channel_attempts=(notice.channel_attempts if same else 0) + 1,
        exhausted=exhausted,
    )
    return Step(ongoing, None, (*ended, _attempt(ongoing, NoticeState.ONGOING, None)), send=True)


@enforces("USE-10")
def delivered(notice: CustomerNotice, provider_ref: str | None = None) -> Step:
    """The channel's provider accepted the notice."""
    if notice.channel is None:
        raise IllegalTransition("delivered on no channel")
    done = notice.to(NoticeState.COMPLETED, reason=None, next_attempt_at=None)
    return Step(
        done,
        CustomerNoticeDelivered(
            notice_id=notice.notice_id,
            kind=notice.kind,
            channel=notice.channel,
            attempts=notice.attempts,
        ),
        (_attempt(notice, NoticeState.COMPLETED, None, provider_ref),),
    )


@enforces("USE-10")
def undelivered(
    notice: CustomerNotice, reason: str, now: datetime, *, permanent: bool, reach: Reach
) -> Step:
    """The provider did not accept the notice: retried on the same channel after its
    back-off while its attempts remain (and the failure was not permanent), else the next
    usable channel at once, else failed for good."""
    if notice.state is not NoticeState.ONGOING or notice.channel is None:
        raise IllegalTransition(f"{notice.state} → {NoticeState.FAILED} (no attempt running)")
    channel = notice.channel
    policy = CHANNEL_POLICIES[channel]
    attempt = _attempt(notice, NoticeState.FAILED, reason[:200])
    if not permanent and policy.may_retry(notice.channel_attempts) and channel in reach.usable:
        failed = notice.to(
            NoticeState.FAILED,
            reason=reason,
            next_attempt_at=now + policy.backoff(notice.channel_attempts),
        )
        return Step(failed, _failed_event(notice, reason, channel), (attempt,))
    exhausted = (*notice.exhausted, channel)
    fallback = reach.next_channel(exhausted)
    if fallback is not None:
        failed = notice.to(
            NoticeState.FAILED,
            reason=reason,
            next_attempt_at=now,
            channel=fallback,
            channel_attempts=0,
            exhausted=exhausted,
        )
        return Step(failed, _failed_event(notice, reason, fallback), (attempt,))
    failed = notice.to(
        NoticeState.FAILED, reason=EVERY_CHANNEL_FAILED, next_attempt_at=None, exhausted=exhausted
    )
    return Step(failed, _failed_event(notice, reason, None), (attempt,))


def _failed_event(
    notice: CustomerNotice, reason: str, next_channel: NoticeChannel | None
) -> CustomerNoticeDeliveryFailed:
    return CustomerNoticeDeliveryFailed(
        notice_id=notice.notice_id,
        reason=reason[:200],
        attempts=notice.attempts,
        will_retry=next_channel is not None,
        channel=notice.channel,
        next_channel=next_channel,
    )


def _attempt(
    notice: CustomerNotice,
    state: NoticeState,
    reason: str | None,
    provider_ref: str | None = None,
) -> Attempt:
    assert notice.channel is not None  # every caller checked
    return Attempt(notice.notice_id, notice.attempts, notice.channel, state, reason, provider_ref)
