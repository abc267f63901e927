"""Wiring: the one place that knows which adapters a service process uses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog
from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.crypto import FieldCipher, MasterKey, PostgresKeyStore
from expensura_events.db import EVENTSTORE_VERSIONS, engine_for
from expensura_events.envelope import EventEnvelope
from expensura_events.kafka import broker_reachable
from expensura_events.mapper import EventMapper
from expensura_events.projections import (
    HttpLogFeed,
    LocalLogFeed,
    LogFeed,
    Projection,
    ProjectionRunner,
)
from expensura_events.relay import OutboxRelay
from expensura_events.settings import ServiceSettings
from expensura_events.store import EventStore
from expensura_events.topology import ServiceSpec

log = structlog.get_logger("expensura.runtime")


@dataclass(frozen=True)
class ServiceDefinition:
    """What a service declares about itself; the library does the rest."""

    spec: ServiceSpec
    description: str
    migrations: Path | None = None  # the service's own Alembic versions directory
    routers: Sequence[APIRouter] = ()
    projections: Sequence[Callable[[], Projection]] = ()

    @property
    def version_locations(self) -> list[Path]:
        return [EVENTSTORE_VERSIONS, *([self.migrations] if self.migrations else [])]


@dataclass
class ServiceRuntime:
    definition: ServiceDefinition
    settings: ServiceSettings
    engine: AsyncEngine = field(init=False)
    keystore_engine: AsyncEngine = field(init=False)
    store: EventStore = field(init=False)
    mapper: EventMapper = field(init=False)
    relay: OutboxRelay = field(init=False)
    runners: list[ProjectionRunner] = field(init=False)
    _stop: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        s, spec = self.settings, self.definition.spec
        self.engine = engine_for(s.database_url)
        self.keystore_engine = engine_for(s.keystore_url, pool_size=5)
        keys = PostgresKeyStore(self.keystore_engine, MasterKey.from_base64(s.master_key))
        self.mapper = EventMapper(FieldCipher(keys))
        self.store = EventStore(self.mapper)
        self.relay = OutboxRelay(self.engine, s.kafka(), spec.name, s.kafka().topic(spec.name))
        self.runners = [
            ProjectionRunner(
                self.engine, self.mapper, make(), s.kafka(), group_id=f"{spec.name}.{p.name}"
            )
            for make in self.definition.projections
            for p in [make()]
        ]

    @property
    def name(self) -> str:
        return self.definition.spec.name

    async def append(
        self,
        conn: AsyncConnection,
        events: Sequence[EventEnvelope],
        expected_version: int | None = None,
    ) -> list[EventEnvelope]:
        return await self.store.append(conn, events, expected_version)

    def start_workers(self) -> None:
        self._tasks.append(asyncio.create_task(self.relay.run(self._stop), name="relay"))
        for runner in self.runners:
            self._tasks.append(
                asyncio.create_task(
                    runner.run(self._stop), name=f"projection:{runner.projection.name}"
                )
            )

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, 10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        await self.engine.dispose()
        await self.keystore_engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        return {
            "database": await _db_reachable(self.engine),
            "keystore": await _db_reachable(self.keystore_engine),
            "broker": await broker_reachable(self.settings.kafka()),
        }

    def feeds(self, projection: Projection, client: httpx.AsyncClient) -> list[LogFeed]:
        """Where a rebuild reads each source: its own log locally, others over HTTP."""
        return [
            LocalLogFeed(self.engine, src)
            if src == self.name
            else HttpLogFeed(client, self.settings.service_urls[src], src)
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
