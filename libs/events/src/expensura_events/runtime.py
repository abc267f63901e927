"""Wiring: the one place that knows which adapters a service process uses."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import structlog
from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events import forgeries
from expensura_events.auth import JWKS_PATH, TokenVerifier
from expensura_events.authenticity import EventSigner, EventVerifier, PublicKeys
from expensura_events.cipher import FieldCipher, MasterKeys
from expensura_events.db import EVENTSTORE_VERSIONS, engine_for
from expensura_events.envelope import (
    Actor,
    DomainEvent,
    EventEnvelope,
    LegalBasis,
    new_event_id,
)
from expensura_events.kafka import broker_reachable
from expensura_events.keystore import KeyStore, PostgresKeyStore, ServiceSecrets
from expensura_events.mapper import EventMapper
from expensura_events.metrics import Reading
from expensura_events.passwords import HashingCost, PasswordHashing
from expensura_events.privacy.access import record_access
from expensura_events.privacy.lifecycle import EraseHook, PlaceHoldsHook, SubjectLifecycle
from expensura_events.privacy.restrictions import check_allowed
from expensura_events.projections import (
    HttpLogFeed,
    InboxRetention,
    LocalLogFeed,
    LogFeed,
    Projection,
    ProjectionConsumer,
    ProjectionRunner,
)
from expensura_events.relay import OutboxRelay
from expensura_events.retention import RetentionRules, Rule, retention_worker
from expensura_events.sequencer import LogEngine
from expensura_events.service_identity import ServiceIdentity
from expensura_events.settings import ServiceSettings
from expensura_events.store import EventStore
from expensura_events.topology import ServiceSpec
from expensura_events.tracing import current_trace_context
from expensura_events.vocabulary import Purpose
from expensura_events.witnessing import chain_witness, checkpoint_worker

log = structlog.get_logger("expensura.runtime")


class Doorbell:
    """Wakes a background worker as soon as this process has made work for it, so that the
    worker's poll (for work that other processes make, or that comes due with time) can be
    slow and an idle service sleeps. Ring it after the commit that made the work: a worker
    woken before the commit would run a round that does not see it yet, then sleep.

    A ring is never lost: one that comes while the worker runs a round ends its next wait
    at once (at worst one extra, empty round)."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, stop: asyncio.Event, timeout: float) -> None:
        """Until a ring since the last wait, `stop`, or `timeout` seconds."""
        if not (self._rung.is_set() or stop.is_set()):
            waiters = [asyncio.ensure_future(self._rung.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        self._rung.clear()


@dataclass(frozen=True)
class ServiceDefinition:
    """What a service declares about itself; the library does the rest."""

    spec: ServiceSpec
    description: str
    migrations: Path | None = None  # the service's own Alembic versions directory
    routers: Sequence[APIRouter] = ()
    projections: Sequence[Callable[[], Projection]] = ()
    # Long-running loops of the service's own (retry queues, timers), run beside the relay.
    workers: Sequence[Callable[[ServiceRuntime, asyncio.Event], Coroutine[Any, Any, None]]] = ()
    settings_class: type[ServiceSettings] = ServiceSettings
    # Erase the subject from the service's own state (not its read models: those are
    # purged through Projection.purge_subject); returns rows removed per table.
    erase_subject: EraseHook | None = None
    # On erasure, after `erase_subject`: place the legal retention holds on the subject's
    # records the law makes the service keep, and say when each ends (the confirmation's
    # "held until"; privacy/lifecycle.py). The service releases them when they end.
    place_holds: PlaceHoldsHook | None = None
    # Which of its own working rows expire, from the settings (retention.py); a worker
    # deletes them, and the projection inbox's, which every service has (`retention_rules`).
    retention: RetentionRules | None = None
    # The service that issues access tokens (identity): its published JWKS, read from its own
    # database, which its token verifier reads at every verification instead of over HTTP.
    published_token_keys: Callable[[ServiceRuntime], Awaitable[dict[str, Any]]] | None = None
    # The service's own gauges, read from its database when Prometheus scrapes `/metrics`
    # (counts of rows: pending erasures, open incidents); names and labels of metrics.CONTRACT.
    readings: Callable[[ServiceRuntime], Awaitable[Iterable[Reading]]] | None = None

    def retention_rules(self, settings: ServiceSettings) -> list[Rule]:
        """Everything the service's retention worker purges: its projection inbox, then the
        working rows it declares."""
        inbox = InboxRetention(timedelta(seconds=settings.inbox_retention_seconds))
        return [inbox, *(self.retention(settings) if self.retention is not None else ())]

    @property
    def opens_keys_of(self) -> set[str]:
        """The other services whose subjects' keys this one may open: the sources of its
        projections that read personal fields (least privilege, keystore_0004)."""
        own = self.spec.name.value
        return {
            source
            for make in self.projections
            if (projection := make()).opens_personal_data
            for source in projection.sources
            if source != own
        }

    @property
    def version_locations(self) -> list[Path]:
        return [EVENTSTORE_VERSIONS, *([self.migrations] if self.migrations else [])]


class ServiceRuntime:
    """A service process's adapters, built from its definition and settings.

    The key store is injectable (`keys=`): PostgreSQL by default, `InMemoryKeyStore` in a
    test that needs no key database. Everything else is built from the settings.
    """

    def __init__(
        self,
        definition: ServiceDefinition,
        settings: ServiceSettings,
        *,
        keys: KeyStore | None = None,
    ) -> None:
        self.definition, self.settings = definition, settings
        s, spec = settings, definition.spec
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._doorbells: dict[str, Doorbell] = {}
        self.engine: LogEngine = engine_for(s.database_url)
        # Every append asks the key store, from inside its own transaction: as many
        # connections as the service's own pool keeps, or they churn under concurrency.
        self.keystore_engine: AsyncEngine = engine_for(s.keystore_url, pool_size=20)
        masters = MasterKeys.from_base64(s.master_key, s.previous_master_key)
        self.keys: KeyStore = (
            keys
            if keys is not None
            else PostgresKeyStore(self.keystore_engine, masters, service=spec.name)
        )
        # This service's own secrets (look-up HMAC, pseudonym, token-key, TOTP wrapping keys).
        self.secrets = ServiceSecrets(self.keystore_engine, masters)
        self.mapper: EventMapper = EventMapper(
            FieldCipher(self.keys),
            verifier=EventVerifier(PublicKeys.from_base64(s.event_public_keys)),
        )
        # No key, no appends (EventStore refuses): a service must not publish what its
        # consumers cannot verify.
        self.store: EventStore = EventStore(
            self.mapper,
            EventSigner.from_base64(spec.name, s.event_signing_key)
            if s.event_signing_key
            else None,
            service=spec.name,
        )
        self.relay: OutboxRelay = OutboxRelay(
            self.engine,
            s.kafka(),
            spec.name,
            s.kafka().topic(spec.name),
            topic_check_interval=s.relay_broker_check_seconds,
        )
        projections = [make() for make in definition.projections]
        projections.append(
            SubjectLifecycle(
                self, definition.projections, definition.erase_subject, definition.place_holds
            )
        )
        projections.append(chain_witness(spec.name.value))
        for projection in projections:
            projection.bind(self)
        # One consumer group per service for all its projections (`ProjectionConsumer`).
        self.projections_group = f"{spec.name}.projections"
        self.runners: list[ProjectionRunner] = [
            ProjectionRunner(
                self.engine,
                self.mapper,
                p,
                s.kafka(),
                self.projections_group,
                on_rejected=forgeries.reporter(self),
                service=spec.name,
            )
            for p in projections
        ]

    @functools.cached_property
    def token_verifier(self) -> TokenVerifier:
        """Verifies access tokens against identity's published keys: over HTTP (cached), or,
        in the service that issues them, read from its own database at every verification
        (a key it retires is refused from that commit)."""
        url = self.settings.service_urls["identity"].rstrip("/") + JWKS_PATH
        own = self.definition.published_token_keys
        if own is None:
            return TokenVerifier(url)
        return TokenVerifier(url, cache_seconds=0, source=lambda: own(self))

    @functools.cached_property
    def service_identity(self) -> ServiceIdentity:
        """Who this service is to other services, and how it recognises them."""
        return ServiceIdentity.from_config(
            self.name, self.settings.service_key, self.settings.service_public_keys
        )

    @functools.cached_property
    def passwords(self) -> PasswordHashing:
        """argon2id for passwords and client secrets, off the event loop (see passwords.py)."""
        s = self.settings
        return PasswordHashing(
            HashingCost(
                s.password_hash_time_cost, s.password_hash_memory_kib, s.password_hash_parallelism
            ),
            workers=s.password_hash_workers,
        )

    @property
    def name(self) -> str:
        return self.definition.spec.name

    def doorbell(self, worker: str) -> Doorbell:
        """The doorbell of this process's background worker named `worker` (`Doorbell`):
        the code that makes the worker's work rings it, the worker waits on it."""
        return self._doorbells.setdefault(worker, Doorbell())

    async def append(
        self,
        conn: AsyncConnection,
        events: Sequence[EventEnvelope],
        expected_version: int | None = None,
    ) -> list[EventEnvelope]:
        """Append in the caller's transaction; refused for subjects whose processing stopped,
        unless the purpose is one the law still allows (RUL-2)."""
        for subject, purpose in {(e.subject_id, e.purpose) for e in events if e.subject_id}:
            await check_allowed(conn, subject, purpose)
        return await self.store.append(conn, events, expected_version)

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
    ) -> EventEnvelope:
        """Wrap a payload with this service's metadata and the current trace context."""
        return EventEnvelope(
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            source=self.name,
            stream_id=stream_id,
            stream_version=0,
            subject_id=subject_id,
            actor=actor,
            purpose=purpose,
            legal_basis=legal_basis,
            correlation_id=correlation_id or new_event_id(),
            causation_id=causation_id,
            trace=current_trace_context(),
            payload=payload,
        )

    async def record_access(
        self,
        conn: AsyncConnection,
        *,
        subject_id: str,
        actor: Actor,
        purpose: Purpose,
        fields: Sequence[str],
        categories: Sequence[str],
        case_reference: str | None = None,
        legal_basis: LegalBasis | None = None,
        decision_id: UUID | None = None,
        decided_at: datetime | None = None,
    ) -> EventEnvelope:
        """Every read of personal data is itself an event (SEC-3, RUL-1)."""
        return await record_access(
            self,
            conn,
            subject_id=subject_id,
            actor=actor,
            purpose=purpose,
            fields=fields,
            categories=categories,
            case_reference=case_reference,
            legal_basis=legal_basis,
            decision_id=decision_id,
            decided_at=decided_at,
        )

    @property
    def workers_running(self) -> bool:
        """Whether this process runs the relay and the projections (`start_workers`)."""
        return bool(self._tasks)

    def start_workers(self) -> None:
        self._tasks.append(asyncio.create_task(self.relay.run(self._stop), name="relay"))
        self._tasks.append(
            asyncio.create_task(checkpoint_worker(self, self._stop), name="checkpoints")
        )
        workers = [*self.definition.workers, retention_worker(self.definition.retention_rules)]
        for worker in workers:
            self._tasks.append(
                asyncio.create_task(
                    worker(self, self._stop), name=getattr(worker, "__name__", "worker")
                )
            )
        consumer = ProjectionConsumer(self.runners, self.settings.kafka(), self.projections_group)
        self._tasks.append(asyncio.create_task(consumer.run(self._stop), name="projections"))

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, 10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        await self.engine.dispose()
        await self.keystore_engine.dispose()
        if "passwords" in self.__dict__:
            self.passwords.close()

    async def readiness(self) -> dict[str, bool]:
        return {
            "database": await _db_reachable(self.engine),
            "keystore": await _db_reachable(self.keystore_engine),
            "broker": await broker_reachable(self.settings.kafka()),
        }

    def feeds(self, projection: Projection, client: httpx.AsyncClient) -> list[LogFeed]:
        """Where a rebuild reads each source: its own log locally, others over HTTP."""
        return [
            LocalLogFeed(self.engine, src, sorted(projection.event_types or ()))
            if src == self.name
            else HttpLogFeed(
                client,
                self.settings.service_urls[src],
                src,
                functools.partial(self.service_identity.headers_for, src),
                sorted(projection.event_types or ()),
            )
            for src in projection.sources
        ]


async def _db_reachable(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(2):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
