"""Delivery of customer notices (USE-10): what became of each notice another service asked
incident to deliver (`loans.CustomerNoticeRequested`).

Neither event holds personal data: the subject is the envelope's, the address and the body
stay sealed in incident's own table. A reason is one of the delivery rules' fixed phrases
(or the mail relay's error class), never a message that could quote an address.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from expensura_events.catalog.loans_notices import NoticeKind
from expensura_events.envelope import DomainEvent
from expensura_events.registry import event_type


class IncidentNoticeKind(StrEnum):
    """Notices incident itself sends (not requested by another service): a breach notice to
    a subject of an incident (SEC-5; `incident_breach`)."""

    BREACH = "breach"


# A customer notice's kind on the one notification path: another service's, or incident's.
AnyNoticeKind = NoticeKind | IncidentNoticeKind


def notice_kind(value: str) -> AnyNoticeKind:
    """The kind named `value`; raises ValueError for none."""
    try:
        return NoticeKind(value)
    except ValueError:
        return IncidentNoticeKind(value)


class NoticeChannel(StrEnum):
    """USE-10's notification channels (incident's notices deliver on all four)."""

    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"
    LETTER = "letter"


@event_type("incident.CustomerNoticeDelivered", source="incident")
class CustomerNoticeDelivered(DomainEvent):
    """The relay accepted the notice for the customer (the envelope's subject)."""

    notice_id: UUID
    kind: NoticeKind | IncidentNoticeKind  # incident's own kinds added with breach notices
    channel: NoticeChannel
    attempts: int = Field(ge=1)  # including this one


@event_type("incident.CustomerNoticeDeliveryFailed", source="incident")
class CustomerNoticeDeliveryFailed(DomainEvent):
    """An attempt failed, or no attempt could be made; `will_retry` says whether another
    comes, and `next_channel` on which channel (the same one after a back-off, or the next
    of the customer's channels at once); neither: the notice failed on every channel."""

    notice_id: UUID
    reason: str = Field(min_length=1, max_length=200)
    attempts: int = Field(ge=0)  # 0: none could be made (no address on file)
    will_retry: bool
    # The channel the failed attempt used; None: no attempt could be made. Both added after
    # e-mail-only delivery: events recorded before read as None.
    channel: NoticeChannel | None = None
    next_channel: NoticeChannel | None = None
