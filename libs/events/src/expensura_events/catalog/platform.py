"""Events the library itself records."""

from __future__ import annotations

from pydantic import Field

from expensura_events.envelope import DomainEvent
from expensura_events.registry import event_type


@event_type("platform.SubjectKeyDestroyed", source="platform")
class SubjectKeyDestroyed(DomainEvent):
    """A subject's data key was destroyed: their personal fields now read as redacted."""

    subject_id: str = Field(max_length=200)
    reason: str = Field(max_length=500)
