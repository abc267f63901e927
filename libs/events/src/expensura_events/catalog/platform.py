"""Events the library itself records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import DataCategory, Grade

# The case a read was made for, as the reader named it: it can name the subject's affairs.
CaseReference = Annotated[
    str, PersonalData(DataCategory.LEGAL_CASE, Grade.PERSONAL), Field(max_length=200)
]


@event_type("platform.SubjectKeyDestroyed", source="platform")
class SubjectKeyDestroyed(DomainEvent):
    """A subject's data key was destroyed: their personal fields now read as redacted."""

    subject_id: str = Field(max_length=200)
    reason: str = Field(max_length=500)


@event_type("platform.PersonalDataAccessed", source="platform")
class PersonalDataAccessed(DomainEvent):
    """Someone read a subject's personal data. Who and why are in the envelope (actor,
    purpose, legal basis); this says what was read, never the values. The case reference
    is sealed; the decision a release was made on is an identifier, readable by the
    services that prove what left (`disclosures prove-withdrawal`)."""

    fields: Annotated[list[str], Field(max_length=100)]
    categories: Annotated[list[str], Field(max_length=50)]
    case_reference: CaseReference | None = None
    decision_id: UUID | None = None
    # For a release: when consent last allowed it (re-decided at redemption). A withdrawal
    # recorded after this instant did not stop it, whenever identity wrote this record.
    decided_at: datetime | None = None


@event_type("platform.RetentionHoldEnded", source="platform")
class RetentionHoldEnded(DomainEvent):
    """A legal retention hold ended: the hold's key was destroyed, its records now read as
    redacted like the rest of the subject's erased data."""

    hold: str = Field(max_length=100)
    reason: str = Field(max_length=500)


HEAD_HASH = r"^[0-9a-f]{64}$"


@event_type("platform.ChainCheckpoint", source="platform")
class ChainCheckpoint(DomainEvent):
    """The service's chain head as it was at `at`: the hash of its log at `sequence`.

    Appended (and so signed and published) by the service's checkpoint worker when its log
    moved since its last checkpoint; the other services witness it (see
    `expensura_events.checkpoints`)."""

    sequence: int = Field(ge=0)
    head_hash: str = Field(pattern=HEAD_HASH)
    at: datetime


@event_type("platform.CheckpointWitnessed", source="platform")
class CheckpointWitnessed(DomainEvent):
    """This service saw `source`'s signed checkpoint: `source`'s log had `head_hash` at
    `sequence`. A rewrite of `source`'s history shows as a mismatch with this record."""

    source: str = Field(max_length=100)
    sequence: int = Field(ge=0)
    head_hash: str = Field(pattern=HEAD_HASH)
    at: datetime
    checkpoint_event_id: UUID


@event_type("platform.ForgedEventRejected", source="platform")
class ForgedEventRejected(DomainEvent):
    """A record that failed verification (unsigned, signed by another service or an unknown
    key, altered, a personal field in plaintext) was parked as a dead letter here, never
    applied. Appended in the dead letter's transaction, once per record, so the incident
    service raises an incident (SEC-4) from what every service refused.

    Where the record came from and why it was refused, nothing of what it said: no payload,
    no header text but a registered event type (a forger writes the headers, and whatever
    they wrote must not enter an immutable log)."""

    claimed_source: str = Field(max_length=100)  # the topic's (or log feed's) owner
    topic: str | None = Field(default=None, max_length=249)  # None: read from a log feed
    partition: int | None = Field(default=None, ge=0)
    offset: int | None = Field(default=None, ge=0)
    rejected_event_id: UUID  # the id it claimed, or one derived from its bytes
    claimed_type: str | None = Field(default=None, max_length=200)  # only if a registered type
    reason: str = Field(max_length=50)  # authenticity.REASONS
    projection: str = Field(max_length=100)  # the read model that refused it first
