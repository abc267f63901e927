"""What the privacy modules need of a service, declared here so they need not know the runtime.

`ServiceRuntime` satisfies `ServiceLog` structurally; a test can pass anything else that does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, LegalBasis
from expensura_events.keystore import KeyStore
from expensura_events.store import EventStore
from expensura_events.vocabulary import Purpose


class ServiceLog(Protocol):
    """A service's log, its database and key store, and the append that enforces RUL-2."""

    @property
    def name(self) -> str: ...

    @property
    def engine(self) -> AsyncEngine: ...

    @property
    def store(self) -> EventStore: ...

    @property
    def keys(self) -> KeyStore: ...

    async def append(
        self,
        conn: AsyncConnection,
        events: Sequence[EventEnvelope],
        expected_version: int | None = None,
    ) -> list[EventEnvelope]: ...

    def envelope(
        self,
        payload: DomainEvent,
        *,
        stream_id: str,
        subject_id: str | None,
        actor: Actor,
        purpose: Purpose,
        legal_basis: LegalBasis | None = None,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> EventEnvelope: ...
