"""Projections: read models fed from the log with exactly-once effect.

A projection's handler writes its read model in the same transaction that records the
event id in `projection_inbox`; an event seen twice (redelivery, relay replay, a broker
that lost its offsets) finds its id there and changes nothing. Kafka offsets are committed
afterwards only to save work. Messages are partitioned by data subject and each partition
is applied in order, so each subject's events apply in the order they were logged.

A rebuild empties the read model and the projection's inbox, then replays every source's
log from its first event through the sources' log feeds. The live runner and a rebuild
share an advisory lock, so they never interleave.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import httpx
import structlog
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry.trace import SpanKind
from sqlalchemy import Table, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.cipher import DataKey
from expensura_events.envelope import EventEnvelope, utcnow
from expensura_events.kafka import KafkaSettings, new_consumer
from expensura_events.mapper import EventMapper
from expensura_events.privacy.restrictions import Restriction
from expensura_events.store import EventStore, StoredRecord
from expensura_events.tables import projection_inbox, subject_restrictions
from expensura_events.topology import topic_source
from expensura_events.tracing import context_from_headers, tracer

log = structlog.get_logger("expensura.projections")


class Projection(ABC):
    """A read model. Subclasses name their sources and tables and apply events."""

    name: ClassVar[str]
    sources: ClassVar[tuple[str, ...]]  # services whose logs it follows
    tables: ClassVar[tuple[Table, ...]]  # what a rebuild empties
    # Read models skip events about erased subjects, so that they never come back (not even
    # through a rebuild). Process managers of the erasure itself must still see them.
    follows_erased_subjects: ClassVar[bool] = False

    @abstractmethod
    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        """Apply one event; ignore types it does not care about."""

    def bind(self, runtime: Any) -> None:
        """Called with the service's runtime before use, for projections that append events
        of their own (a process manager); most read models ignore it."""
        return None

    async def subject_rows(self, conn: AsyncConnection, subject_id: str) -> dict[str, list[Any]]:
        """What this read model holds about a subject (access requests, RGT-1).

        The default reads every table with a `subject_id` column; override when a read
        model keys subjects differently.
        """
        out: dict[str, list[Any]] = {}
        for table in self.tables:
            if "subject_id" in table.c:
                rows = await conn.execute(select(table).where(table.c.subject_id == subject_id))
                out[table.name] = [dict(r._mapping) for r in rows]
        return out

    async def purge_subject(self, conn: AsyncConnection, subject_id: str) -> dict[str, int]:
        """Erase the subject from this read model (RGT-3); returns rows removed per table."""
        purged: dict[str, int] = {}
        for table in self.tables:
            if "subject_id" in table.c:
                result = await conn.execute(delete(table).where(table.c.subject_id == subject_id))
                purged[table.name] = result.rowcount
        return purged


def subject_lock_key(subject_id: str) -> int:
    return zlib.crc32(b"subject:" + subject_id.encode())


def projection_lock_key(name: str) -> int:
    return zlib.crc32(b"projection:" + name.encode())


async def apply_once(
    conn: AsyncConnection,
    projection: Projection,
    mapper: EventMapper,
    source: str,
    event_id: str,
    record: bytes,
    keys: dict[str, DataKey | None],
) -> bool:
    """Apply one stored record unless the projection has applied it; True if applied now."""
    inserted = await conn.execute(
        insert(projection_inbox)
        .values(projection=projection.name, event_id=event_id, source=source, applied_at=utcnow())
        .on_conflict_do_nothing()
        .returning(projection_inbox.c.event_id)
    )
    if inserted.first() is None:
        return False
    event = await mapper.from_record(record, keys=keys)
    if event.subject_id is not None and not projection.follows_erased_subjects:
        # An erased subject never re-enters a read model, not even through a rebuild. The
        # shared lock orders this check against the erasure's purge (which takes it
        # exclusively): a purge waits for applies in flight, later applies see "erased".
        await conn.execute(
            text("SELECT pg_advisory_xact_lock_shared(:k)"),
            {"k": subject_lock_key(event.subject_id)},
        )
        erased = await conn.execute(
            select(subject_restrictions.c.state).where(
                subject_restrictions.c.subject_id == event.subject_id,
                subject_restrictions.c.state == Restriction.ERASED.value,
            )
        )
        if erased.first() is not None:
            return True
    await projection.apply(conn, event)
    return True


@dataclass
class RunnerStats:
    applied: int = 0
    duplicates: int = 0
    errors: int = 0


class ProjectionRunner:
    """Consumes the sources' topics and applies them to one projection."""

    def __init__(
        self,
        engine: AsyncEngine,
        mapper: EventMapper,
        projection: Projection,
        kafka: KafkaSettings,
        group_id: str,
    ) -> None:
        self.engine, self.mapper, self.projection = engine, mapper, projection
        self.kafka, self.group_id = kafka, group_id
        self.stats = RunnerStats()

    async def run(self, stop: asyncio.Event) -> None:
        topics = [self.kafka.topic(s) for s in self.projection.sources]
        backoff = 0.2
        while not stop.is_set():
            consumer = new_consumer(self.kafka, topics, self.kafka.group(self.group_id))
            try:
                await consumer.start()
                pending: dict[TopicPartition, int] = {}
                last_commit = time.monotonic()
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=200, max_records=500)
                    if batches:
                        # One transaction for the whole poll, each partition in its order.
                        await self._apply_batch(batches)
                        pending |= {tp: msgs[-1].offset + 1 for tp, msgs in batches.items()}
                    # Offsets only save work after a restart (the inbox already dedupes), so
                    # they are committed at most once a second, not per message.
                    if pending and (time.monotonic() - last_commit > 1.0 or stop.is_set()):
                        await self._commit(consumer, pending)
                        pending, last_commit = {}, time.monotonic()
                    backoff = 0.2
                if pending:
                    await self._commit(consumer, pending)
            except Exception as exc:  # broker or database trouble: start over, lose nothing
                self.stats.errors += 1
                log.warning(
                    "projection.failed",
                    projection=self.projection.name,
                    error=repr(exc),
                    retry_in=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    await asyncio.wait_for(consumer.stop(), 5)
                except Exception as exc:
                    log.debug("projection.consumer_stop_failed", error=repr(exc))

    async def _apply_batch(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        keys: dict[str, DataKey | None] = {}
        async with self.engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": projection_lock_key(self.projection.name)},
            )
            for tp, messages in batches.items():
                await self._apply_partition(conn, tp, messages, keys)

    async def _apply_partition(
        self,
        conn: AsyncConnection,
        tp: TopicPartition,
        messages: Sequence[ConsumerRecord[bytes, bytes]],
        keys: dict[str, DataKey | None],
    ) -> None:
        source = topic_source(tp.topic)
        for msg in messages:
            headers = list(msg.headers or ())
            event_id = next((v.decode() for k, v in headers if k == "event_id"), None)
            with tracer.start_as_current_span(
                f"{self.projection.name} process",
                kind=SpanKind.CONSUMER,
                context=context_from_headers(headers),
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": tp.topic,
                    "messaging.consumer.group.name": self.group_id,
                    "messaging.message.id": event_id or "",
                    "expensura.projection": self.projection.name,
                },
            ):
                if event_id is None or msg.value is None:
                    log.warning("projection.skipped_foreign_message", topic=tp.topic)
                    continue
                if await apply_once(
                    conn, self.projection, self.mapper, source, event_id, msg.value, keys
                ):
                    self.stats.applied += 1
                else:
                    self.stats.duplicates += 1

    @staticmethod
    async def _commit(consumer: object, offsets: dict[TopicPartition, int]) -> None:
        # Only an optimisation: the inbox already made the work idempotent.
        try:
            await asyncio.wait_for(consumer.commit(offsets), 5)  # type: ignore[attr-defined]
        except (KafkaError, TimeoutError) as exc:
            log.info("projection.offset_commit_failed", error=repr(exc))


class LogFeed(Protocol):
    """A source's log in sequence order, as stored."""

    source: str

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]: ...


class LocalLogFeed:
    """The service's own log, read from its own database."""

    def __init__(self, engine: AsyncEngine, source: str) -> None:
        self.engine, self.source = engine, source

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        async with self.engine.connect() as conn:
            return await EventStore.read_records(conn, after_seq, limit)


class HttpLogFeed:
    """Another service's log through its `GET /internal/log` feed (never its tables)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, source: str) -> None:
        self.client, self.base_url, self.source = client, base_url.rstrip("/"), source

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        resp = await self.client.get(
            f"{self.base_url}/internal/log", params={"after": after_seq, "limit": limit}
        )
        resp.raise_for_status()
        return [
            StoredRecord(
                item["seq"],
                item["event_id"],
                item["event_type"],
                item["stream_id"],
                item["subject_id"],
                item["record"].encode(),
                bytes.fromhex(item["hash"]),
            )
            for item in resp.json()["events"]
        ]


async def rebuild(
    engine: AsyncEngine,
    mapper: EventMapper,
    projection: Projection,
    feeds: Sequence[LogFeed],
    *,
    batch: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Empty the read model and replay every source from its first event. Returns the count."""
    applied = 0
    async with engine.connect() as lock_conn:
        await lock_conn.execute(
            text("SELECT pg_advisory_lock(:k)"), {"k": projection_lock_key(projection.name)}
        )
        try:
            async with engine.begin() as conn:
                for table in projection.tables:
                    await conn.execute(delete(table))
                await conn.execute(
                    delete(projection_inbox).where(projection_inbox.c.projection == projection.name)
                )
            for feed in feeds:
                after = 0
                while True:
                    records = await feed.read(after, batch)
                    if not records:
                        break
                    keys: dict[str, DataKey | None] = {}
                    async with engine.begin() as conn:
                        for rec in records:
                            if await apply_once(
                                conn,
                                projection,
                                mapper,
                                feed.source,
                                rec.event_id,
                                rec.record,
                                keys,
                            ):
                                applied += 1
                    after = records[-1].seq
                    if progress is not None:
                        progress(len(records))
        finally:
            await lock_conn.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": projection_lock_key(projection.name)}
            )
            await lock_conn.commit()
    return applied
