"""Data-subject rights: access (export), cancellation, erasure and its certificate.

Identity orchestrates; every service takes part. `rights.ErasureConfirmed` is published by
each service on its own topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent
from expensura_events.registry import event_type


@event_type("rights.DataExportRequested", source="identity")
class DataExportRequested(DomainEvent):
    export_id: UUID
    format: str = Field(max_length=20)


@event_type("rights.DataExportDelivered", source="identity")
class DataExportDelivered(DomainEvent):
    """The export left the system: which stores contributed, and a digest of the file."""

    export_id: UUID
    services: list[str]
    sha256: str = Field(max_length=64)


@event_type("rights.AccountCancellationRequested", source="identity")
class AccountCancellationRequested(DomainEvent):
    request_id: UUID
    cooling_off_until: datetime
    reason: str = Field(max_length=100)


@event_type("rights.AccountCancellationWithdrawn", source="identity")
class AccountCancellationWithdrawn(DomainEvent):
    request_id: UUID


@event_type("rights.ProcessingStopped", source="identity")
class ProcessingStopped(DomainEvent):
    """From now on no service may use the subject's data except under a legal hold."""

    request_id: UUID


@event_type("rights.ErasureRequested", source="identity")
class ErasureRequested(DomainEvent):
    request_id: UUID
    attempt: int = 1


@event_type("rights.ErasureConfirmed", source="platform")
class ErasureConfirmed(DomainEvent):
    """A service erased the subject from its stores (published by every service)."""

    request_id: UUID
    service: str = Field(max_length=50)
    purged: dict[str, int]
    retained: Annotated[list[str], Field(max_length=50)] = []


_HELD = re.compile(
    r"^(?P<hold>[a-z0-9][a-z0-9.-]*): (?P<records>\d+) log records"
    r"(?:, held until (?P<until>\d{4}-\d{2}-\d{2}))?$"
)


@dataclass(frozen=True)
class HeldEntry:
    """One entry of `ErasureConfirmed.retained`: a hold, how many of the subject's log
    records it keeps, and until when (if the service said)."""

    hold: str
    records: int
    until: date | None = None

    def __str__(self) -> str:
        held = f"{self.hold}: {self.records} log records"
        return held if self.until is None else f"{held}, held until {self.until.isoformat()}"

    @classmethod
    def parse(cls, entry: str) -> HeldEntry | None:
        """The entry as written by `str`; None for one in another form."""
        found = _HELD.match(entry)
        if found is None:
            return None
        until = date.fromisoformat(found["until"]) if found["until"] else None
        return cls(found["hold"], int(found["records"]), until)


@event_type("rights.ErasureEscalated", source="identity")
class ErasureEscalated(DomainEvent):
    """Some stores did not confirm after every retry: a person must look."""

    request_id: UUID
    missing: list[str]


@event_type("rights.ErasureCertificateIssued", source="identity")
class ErasureCertificateIssued(DomainEvent):
    request_id: UUID
    services: list[str]
    key_destroyed: bool
