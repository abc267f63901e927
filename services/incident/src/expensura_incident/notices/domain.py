"""Customer notices (USE-10): the life of one notice another service asked incident to
deliver, its retry policy, and the events each step records. Pure: no I/O.

States (after DPV's activity statuses):

    planned ──► ongoing ──► completed
       │           │  ▲
       │           ▼  │ retry, while attempts remain (back-off between them)
       │         failed
       ├─────────► failed          no e-mail on file: nothing to attempt, no retry
       └─────────► not-needed      the subject is erased, or their processing stopped

- `ongoing` is committed before the mail is handed to the relay. A row left `ongoing` past
  its lease (the process died mid-send) is due again and retried as a new attempt: delivery
  is at-least-once across a crash inside the send itself, and exactly once otherwise.
- `failed` with attempts left is due again at `next_attempt_at`; without, it is final.
- `not-needed` (with its reason) is final and records no event: there is nobody to tell,
  and nothing more is written about an erased subject.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from expensura_events.catalog.incident_notices import (
    CustomerNoticeDelivered,
    CustomerNoticeDeliveryFailed,
    NoticeChannel,
)
from expensura_events.catalog.loans_notices import NoticeKind
from expensura_events.envelope import REDACTED
from expensura_events.obligations import enforces
from expensura_events.privacy.restriction_rules import Restriction, permits
from expensura_events.vocabulary import Purpose

PURPOSE = Purpose.COMMUNICATION

# Retry policy: at most this many attempts, 30 s * 2^(k-1) after the k-th failure, capped.
MAX_ATTEMPTS = 5
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
# How long an `ongoing` row is trusted to be in the hands of a live sender: far longer than
# one SMTP conversation (the sender times out after 10 s), so only a crash outlives it.
SEND_LEASE = timedelta(minutes=5)

# Reasons: fixed phrases (they go into events and logs, so they never quote a value).
NO_EMAIL = "no e-mail on file"
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
    # failed → failed: a retry found nothing to attempt (the address was removed meanwhile)
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


def may_retry(attempts: int) -> bool:
    """Whether another attempt may follow `attempts` made ones."""
    return attempts < MAX_ATTEMPTS


def next_attempt_at(attempts: int, now: datetime) -> datetime:
    """When the next attempt is due after the `attempts`-th failed one (exponential
    back-off: 30 s, 1 min, 2 min, … never more than an hour)."""
    if attempts < 1:
        raise ValueError("the back-off follows a failed attempt")
    # The exponent is bounded first: 2^k for a huge k would overflow a timedelta.
    wait: timedelta = min(FIRST_BACKOFF * (1 << min(attempts - 1, 32)), MAX_BACKOFF)
    return now + wait


@dataclass(frozen=True)
class CustomerNotice:
    """One notice and where its delivery stands. The body and address are not here: they
    stay sealed until the moment of sending."""

    notice_id: UUID
    subject_id: str
    kind: NoticeKind
    title: str
    state: NoticeState
    attempts: int = 0
    reason: str | None = None
    # When it is next due: a planned one at once, a failed one after its back-off, an
    # ongoing one when its lease ends; None when nothing more is to be done.
    next_attempt_at: datetime | None = None

    def to(
        self,
        state: NoticeState,
        *,
        reason: str | None,
        next_attempt_at: datetime | None,
        attempts: int | None = None,
    ) -> CustomerNotice:
        """The notice in `state`; raises IllegalTransition for a step TRANSITIONS lacks."""
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state} → {state}")
        return dataclasses.replace(
            self,
            state=state,
            reason=reason,
            next_attempt_at=next_attempt_at,
            attempts=self.attempts if attempts is None else attempts,
        )

    @property
    def final(self) -> bool:
        return not TRANSITIONS[self.state]


@enforces("USE-10")
def plan(
    notice_id: UUID, subject_id: str | None, kind: NoticeKind, title: str, body: str, now: datetime
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
    record with it (if any), and whether to hand the mail to the relay now."""

    notice: CustomerNotice
    event: CustomerNoticeDelivered | CustomerNoticeDeliveryFailed | None = None
    send: bool = False


@enforces("USE-10", "RUL-2")
def begin_attempt(
    notice: CustomerNotice,
    now: datetime,
    *,
    restriction: Restriction | None,
    body_erased: bool,
    has_email: bool,
) -> Step:
    """The step for a due notice, given what was found when it was opened: not needed (the
    subject erased or stopped), failed (no address, or a crashed attempt with none left),
    or ongoing (send it now, under a lease)."""
    if not due(notice, now):
        raise IllegalTransition(f"notice {notice.notice_id} is not due")
    if body_erased:
        return Step(notice.to(NoticeState.NOT_NEEDED, reason=SUBJECT_ERASED, next_attempt_at=None))
    if not permits(restriction, PURPOSE):
        return Step(
            notice.to(NoticeState.NOT_NEEDED, reason=PROCESSING_STOPPED, next_attempt_at=None)
        )
    if not has_email:
        return _failed(notice, NO_EMAIL, now, retryable=False)
    if not may_retry(notice.attempts):  # a crashed attempt was the last one
        return _failed(notice, INTERRUPTED, now, retryable=False)
    ongoing = notice.to(
        NoticeState.ONGOING,
        attempts=notice.attempts + 1,
        reason=None,
        next_attempt_at=now + SEND_LEASE,
    )
    return Step(ongoing, send=True)


@enforces("USE-10")
def delivered(notice: CustomerNotice) -> Step:
    """The relay accepted the mail."""
    done = notice.to(NoticeState.COMPLETED, reason=None, next_attempt_at=None)
    return Step(
        done,
        CustomerNoticeDelivered(
            notice_id=notice.notice_id,
            kind=notice.kind,
            channel=NoticeChannel.EMAIL,
            attempts=notice.attempts,
        ),
    )


@enforces("USE-10")
def undelivered(notice: CustomerNotice, reason: str, now: datetime) -> Step:
    """The relay did not accept the mail: failed, retried later while attempts remain."""
    if notice.state is not NoticeState.ONGOING:
        raise IllegalTransition(f"{notice.state} → {NoticeState.FAILED} (no attempt running)")
    return _failed(notice, reason, now, retryable=True)


def _failed(notice: CustomerNotice, reason: str, now: datetime, *, retryable: bool) -> Step:
    will_retry = retryable and may_retry(notice.attempts)
    failed = notice.to(
        NoticeState.FAILED,
        reason=reason,
        next_attempt_at=next_attempt_at(notice.attempts, now) if will_retry else None,
    )
    return Step(
        failed,
        CustomerNoticeDeliveryFailed(
            notice_id=notice.notice_id,
            reason=reason[:200],
            attempts=notice.attempts,
            will_retry=will_retry,
        ),
    )
