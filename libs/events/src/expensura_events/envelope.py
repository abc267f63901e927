"""The event envelope: what every event says about itself, so it answers an auditor alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

import uuid6
from pydantic import BaseModel, ConfigDict, Field

from expensura_events.vocabulary import ActorKind, DataCategory, Grade, LegalGround, Purpose


class PersonalData:
    """Marks a payload field as personal data of a category and grade (SEC-1).

    Every such field is encrypted with the subject's data key before it reaches the log or
    Kafka: the log is immutable, so anything personal left readable there could never be
    erased.
    """

    __slots__ = ("category", "grade")

    def __init__(self, category: DataCategory, grade: Grade) -> None:
        self.category = category
        self.grade = grade

    def __repr__(self) -> str:
        return f"PersonalData({self.category.value}, {self.grade.value})"


def new_event_id() -> UUID:
    """UUIDv7: unique, and sortable by creation time."""
    return UUID(str(uuid6.uuid7()))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: ActorKind
    id: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=50)  # the staff role acted under

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls(kind=ActorKind.SYSTEM, id=component)


class LegalBasis(BaseModel):
    """The ground relied on, with its evidence (a consent record id, a court order's hash …)."""

    model_config = ConfigDict(frozen=True)
    ground: LegalGround
    reference: str | None = Field(default=None, max_length=500)


class TraceContext(BaseModel):
    """W3C trace context captured where the event was caused."""

    model_config = ConfigDict(frozen=True)
    traceparent: str
    tracestate: str | None = None


class DomainEvent(BaseModel):
    """Base of every event payload. Subclasses are registered with `@event_type`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]
    schema_version: ClassVar[int]


class EventEnvelope(BaseModel):
    """A payload with the metadata the log keeps for it.

    `sequence`, `recorded_at` and the hash are the store's: they are set when appended.
    `payload` is the typed event on write; on read it is the typed event when its type is
    registered, with personal fields decrypted or replaced by the redaction marker.
    """

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=new_event_id)
    event_type: str
    schema_version: int
    source: str
    stream_id: str
    stream_version: int
    subject_id: str | None
    actor: Actor
    purpose: Purpose
    legal_basis: LegalBasis | None = None
    occurred_at: datetime = Field(default_factory=utcnow)
    recorded_at: datetime | None = None
    correlation_id: UUID
    causation_id: UUID | None = None
    trace: TraceContext | None = None
    # A legal retention hold (e.g. loan records the law requires keeping): the personal
    # fields are then sealed with the hold's own key, so erasing the subject leaves them
    # readable, for legal compliance only, until the hold ends and its key is destroyed.
    retention_hold: str | None = Field(
        default=None, max_length=100, pattern=r"^[a-z0-9][a-z0-9.-]*$"
    )
    sequence: int | None = None
    payload: Annotated[Any, Field(description="the event body")]


def key_owner(subject_id: str, retention_hold: str | None) -> str:
    """Whose key seals a record: the subject's own, or the subject's key for one hold."""
    return subject_id if retention_hold is None else f"{subject_id}#hold:{retention_hold}"


REDACTED = "[redacted: subject key destroyed]"
"""What a personal field reads as once its subject's key is destroyed (crypto-shredding)."""
