"""Projections: read models fed from the log with exactly-once effect.

A projection's handler writes its read model in the same transaction that records the
event id in `projection_inbox`; an event seen twice (redelivery, relay replay, a broker
that lost its offsets) finds its id there and changes nothing. Kafka offsets are committed
afterwards only to save work. Messages are partitioned by data subject and each partition
is applied in order, so each subject's events apply in the order they were logged.

Before anything applies, each record is verified (`authenticity.py`): signed by the service
that owns the topic or log feed it came from, its personal fields sealed. A record that
fails is parked as a dead letter with the reason and never applied, and the runner's
`on_rejected` hook reports it in the same transaction (the service's log, for the incident
service: `forgeries.py`); the inbox then records the verified record's own event id, never a
header's.

The inbox stays bounded (`InboxRetention`): per projection and source, a floor time at or
before which every event the source recorded counts as applied. The retention purge raises it
to the latest recording time among rows applied longer ago than
`EXPENSURA_INBOX_RETENTION_SECONDS` and deletes the rows up to it; a record at or before the
floor (the broker replaying the whole log, a consumer that lost its offsets) is a duplicate
without an inbox row. The time comes from the signed record, never from a header.

Each event applies in a savepoint of its batch. One that fails in a way a retry cannot fix
is parked as a dead letter (see `deadletters.py`) and the batch goes on; a failure that
means "the database or the network is unavailable" (`db_errors.is_transient`) fails the
batch, which is retried as a whole.

A rebuild empties the read model and the projection's inbox and replays every source's log
from its first event through the sources' log feeds, all in ONE transaction: if it fails,
the read model is as it was. The live runner and a rebuild share an advisory lock, so they
never interleave.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import httpx
import structlog
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import ARRAY, Table, Text, cast, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events import deadletters
from expensura_events.authenticity import (
    RejectedEvent,
    claimed_event_id,
    fallback_event_id,
)
from expensura_events.checkpoints import CHAIN_EVIDENCE_TYPES
from expensura_events.cipher import KeyCache
from expensura_events.db_errors import error_fields, is_transient, is_unavailable
from expensura_events.deadletters import DeadLetter, Delivery
from expensura_events.envelope import EventEnvelope, key_owner, utcnow
from expensura_events.forgeries import RejectionHook
from expensura_events.kafka import FetchPace, KafkaSettings, new_consumer
from expensura_events.mapper import EventMapper
from expensura_events.metrics import PROJECTION_APPLIED
from expensura_events.obligations import enforces
from expensura_events.privacy.restrictions import Restriction
from expensura_events.store import EventStore, StoredRecord
from expensura_events.tables import projection_dead_letters as dead_letters_table
from expensura_events.tables import (
    projection_inbox,
    projection_inbox_floors,
    subject_restrictions,
)
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
    # The event types it applies, when it wants only a few of its sources' many: the others
    # are verified (a forgery is still parked) but neither decrypted nor put in the inbox.
    # None: every type except checkpoints and witness records (see `wants`).
    event_types: ClassVar[frozenset[str] | None] = None
    # Whether it reads the personal fields of its sources' events. Its service may then
    # open those services' keys (the key store's grants, keystore_0004); otherwise another
    # service's personal fields reach it redacted.
    opens_personal_data: ClassVar[bool] = False

    @abstractmethod
    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        """Apply one event; ignore types it does not care about."""

    async def apply_many(self, conn: AsyncConnection, events: Sequence[EventEnvelope]) -> None:
        """Apply events in order, with the effect of `apply` on each in turn. A rebuild
        hands its batches here; a read model overrides it to write a batch in a few
        statements."""
        for event in events:
            await self.apply(conn, event)

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


def purge_lock_key(name: str) -> int:
    """Held exclusively by a rebuild of `name` for its whole transaction, and shared by an
    erasure before it purges `name`: the erasure waits for the rebuild to commit, then purges
    what the rebuild wrote. (A rebuild cannot take every subject's lock instead: one
    transaction holding a lock per subject exhausts PostgreSQL's lock table.)"""
    return zlib.crc32(b"purge:" + name.encode())


async def lock_against_rebuild(conn: AsyncConnection, projection_name: str) -> None:
    """Call before purging a subject from a read model (see `purge_lock_key`)."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": purge_lock_key(projection_name)}
    )


@enforces("RGT-3")
async def apply_once(
    conn: AsyncConnection,
    projection: Projection,
    mapper: EventMapper,
    source: str,
    event_id: str,
    record: bytes,
    keys: KeyCache,
    *,
    recorded_at: datetime | None = None,
    floor: datetime | None = None,
    subject_lock: bool = True,
) -> bool:
    """Apply one stored record unless the projection has applied it; True if applied now.

    `recorded_at` is when the source recorded it (from the verified record) and `floor` the
    projection's inbox floor for that source (`InboxRetention`): at or before it, the record
    was applied before its inbox row was purged. `subject_lock=False` only under a rebuild's
    purge lock, which orders it against erasure.
    """
    if recorded_at is not None and floor is not None and recorded_at <= floor:
        return False
    inserted = await conn.execute(
        insert(projection_inbox)
        .values(
            projection=projection.name,
            event_id=event_id,
            source=source,
            applied_at=utcnow(),
            recorded_at=recorded_at,
        )
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
        if subject_lock:
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


async def inbox_floors(conn: AsyncConnection, projection: str) -> dict[str, datetime]:
    """The projection's inbox floor per source (see `InboxRetention`)."""
    rows = await conn.execute(
        select(projection_inbox_floors.c.source, projection_inbox_floors.c.recorded_at).where(
            projection_inbox_floors.c.projection == projection
        )
    )
    return {r.source: r.recorded_at for r in rows}


@dataclass(frozen=True)
class InboxRetention:
    """The retention rule of the projection inbox (retention.py): per projection and source,
    raise the floor to the latest recording time among the rows applied longer ago than
    `keep`, then delete the rows recorded at or before it.

    Safe because a source records its events in log order (appends are serialised, so their
    times do not go back by anything near `keep`), the relay publishes that order and a
    consumer applies each partition in order: an event at or before the floor was applied,
    unless it waited in another partition for longer than `keep` after a later event of the
    same source was applied (an outage the projection-lag alert reports long before). A dead
    letter the floor passes stays open and is retried through the log feed, which ignores the
    floor. The time is the signed record's: a forged header cannot move the floor.
    """

    keep: timedelta
    name: str = "projection_inbox"

    async def purge(self, engine: AsyncEngine, now: datetime, batch: int) -> int:
        inbox, floors = projection_inbox, projection_inbox_floors
        async with engine.connect() as conn:
            pairs = (
                await conn.execute(select(inbox.c.projection, inbox.c.source).distinct())
            ).all()
        deleted = 0
        for projection, source in pairs:
            async with engine.begin() as conn:
                if not await _try_projection_lock(conn, projection):
                    continue
                floor = (
                    await conn.execute(
                        select(func.max(inbox.c.recorded_at)).where(
                            inbox.c.projection == projection,
                            inbox.c.source == source,
                            inbox.c.applied_at < now - self.keep,
                        )
                    )
                ).scalar_one()
                if floor is None:
                    continue
                await conn.execute(
                    insert(floors)
                    .values(projection=projection, source=source, recorded_at=floor, updated_at=now)
                    .on_conflict_do_update(
                        index_elements=[floors.c.projection, floors.c.source],
                        set_={
                            "recorded_at": func.greatest(floors.c.recorded_at, floor),
                            "updated_at": now,
                        },
                    )
                )
            # Then the rows at or below the floor as it stands (a rebuild in between removes
            # it, and its rows stay), in short transactions.
            current = (
                select(floors.c.recorded_at)
                .where(floors.c.projection == projection, floors.c.source == source)
                .scalar_subquery()
            )
            while True:
                doomed = (
                    select(inbox.c.event_id)
                    .where(
                        inbox.c.projection == projection,
                        inbox.c.source == source,
                        inbox.c.recorded_at <= current,
                    )
                    .limit(batch)
                )
                async with engine.begin() as conn:
                    if not await _try_projection_lock(conn, projection):
                        break
                    gone = (
                        await conn.execute(
                            delete(inbox).where(
                                inbox.c.projection == projection,
                                inbox.c.event_id.in_(doomed.scalar_subquery()),
                            )
                        )
                    ).rowcount
                deleted += gone
                if gone < batch:
                    break
        return deleted


async def _try_projection_lock(conn: AsyncConnection, projection: str) -> bool:
    """The projection's lock for this transaction if free: a batch or a rebuild holding it
    reads the floors once and rewrites the inbox, so the purge waits for its next turn."""
    locked = await conn.execute(
        text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": projection_lock_key(projection)}
    )
    return bool(locked.scalar_one())


@dataclass
class Outcome:
    """What one batch did, known once its transaction commits."""

    applied: list[str] = field(default_factory=list)
    duplicates: int = 0
    parked: list[tuple[DeadLetter, BaseException]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # per reason; also in `parked`
    # Per source, the latest recording time among the records found applied (now or before).
    recorded: dict[str, datetime] = field(default_factory=dict)


def verified(mapper: EventMapper, delivery: Delivery) -> Delivery:
    """The delivery with the event id and type of its verified record; raises
    `RejectedEvent`."""
    return _verified(mapper, delivery)[0]


def _verified(mapper: EventMapper, delivery: Delivery) -> tuple[Delivery, dict[str, Any]]:
    """`verified`, and the record's envelope as parsed."""
    data = mapper.verifier.verify(
        delivery.source, delivery.record, delivery.signature, delivery.key_id
    )
    return dataclasses.replace(
        delivery,
        event_id=str(data["event_id"]),
        event_type=str(data.get("event_type")),
        recorded_at=_signed_time(data.get("recorded_at")),
    ), data


def _signed_time(value: object) -> datetime | None:
    """The record's `recorded_at` (the inbox floor's measure), if it is a proper time."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def unverified(delivery: Delivery) -> Delivery:
    """A refused delivery, under an id it can be parked with (see `fallback_event_id`)."""
    claim = claimed_event_id(delivery.record) or delivery.event_id
    return dataclasses.replace(delivery, event_id=fallback_event_id(delivery.record, claim))


def wants(projection: Projection | type[Projection], event_type: str | None) -> bool:
    """Whether `projection` applies records of this (verified) type. Checkpoints and
    witness records are evidence about chains, not business: only a projection that names
    them sees them, so read models neither count them nor keep an inbox row per record."""
    if projection.event_types is not None:
        return event_type in projection.event_types
    return event_type not in CHAIN_EVIDENCE_TYPES


SpanFor = Callable[[Delivery], contextlib.AbstractContextManager[Any]]


def _no_span(_: Delivery) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


async def apply_deliveries(
    conn: AsyncConnection,
    projection: Projection,
    mapper: EventMapper,
    deliveries: Sequence[Delivery],
    keys: KeyCache,
    *,
    resolved_by: str,
    subject_lock: bool = True,
    span: SpanFor = _no_span,
    on_rejected: RejectionHook | None = None,
    savepoint: bool = True,
) -> Outcome:
    """Apply deliveries in order inside the caller's transaction, parking what cannot apply.

    The whole batch first runs in one savepoint, with statements per batch rather than per
    event (`_apply_together`: every record verified, then one statement each for the inbox
    rows, the keys, the subjects' locks and which of them are erased, and the read model's
    `apply_many`). If an event fails deterministically, that savepoint is rolled back and
    the batch runs again event by event with a savepoint each, so only the failing events
    are rolled back and parked. A transient failure propagates: the caller's batch fails
    and is retried. The caller holds the projection's lock, so the inbox floors cannot move
    meanwhile.

    `savepoint=False` skips the batch's savepoint (two round trips) and lets a deterministic
    failure propagate too: for a caller that then rolls its transaction back and applies
    the batch again in a new one with the savepoint (`ProjectionRunner`).
    """
    floors = await inbox_floors(conn, projection.name)
    if not savepoint:
        outcome = await _apply_together(
            conn, projection, mapper, deliveries, keys, subject_lock, span, floors, on_rejected
        )
        await deadletters.resolve_applied(conn, projection.name, outcome.applied, resolved_by)
        return outcome
    try:
        async with conn.begin_nested():
            outcome = await _apply_together(
                conn,
                projection,
                mapper,
                deliveries,
                keys,
                subject_lock,
                span,
                floors,
                on_rejected,
            )
    except Exception as exc:
        if is_transient(exc):
            raise
        outcome = await _apply_in_order(
            conn,
            projection,
            mapper,
            deliveries,
            keys,
            subject_lock,
            span,
            floors,
            on_rejected,
            isolate=True,
        )
    await deadletters.resolve_applied(conn, projection.name, outcome.applied, resolved_by)
    return outcome


async def _apply_together(
    conn: AsyncConnection,
    projection: Projection,
    mapper: EventMapper,
    deliveries: Sequence[Delivery],
    keys: KeyCache,
    subject_lock: bool,
    span: SpanFor,
    floors: dict[str, datetime],
    on_rejected: RejectionHook | None,
) -> Outcome:
    """`_apply_in_order` to the same effect, with statements per batch: each event applied
    on its own costs five or six round trips to the database, and a consumer's batch
    applied that way kept up with about a hundred events a second (py-spy: the runner
    waited on the database, not the CPU). Refused records are parked as they are met; the
    rest go through `_apply_batch`."""
    outcome = Outcome()
    genuine: list[tuple[Delivery, dict[str, Any]]] = []
    for delivery in deliveries:
        with span(delivery):
            try:
                d, data = _verified(mapper, delivery)
            except RejectedEvent as exc:
                await _park_rejected(conn, projection, delivery, exc, outcome, on_rejected)
                continue
        if not wants(projection, d.event_type):
            continue  # genuine, but nothing this projection applies
        last = outcome.recorded.get(d.source)
        if d.recorded_at is not None and (last is None or d.recorded_at > last):
            outcome.recorded[d.source] = d.recorded_at
        floor = floors.get(d.source)
        if d.recorded_at is not None and floor is not None and d.recorded_at <= floor:
            outcome.duplicates += 1  # applied before its inbox row was purged
            continue
        genuine.append((d, data))
    applied, duplicates = await _apply_batch(
        conn, projection, mapper, genuine, keys, subject_lock=subject_lock
    )
    outcome.applied += applied
    outcome.duplicates += duplicates
    return outcome


async def _park_rejected(
    conn: AsyncConnection,
    projection: Projection,
    delivery: Delivery,
    exc: RejectedEvent,
    outcome: Outcome,
    on_rejected: RejectionHook | None,
) -> None:
    """A record that failed verification: parked, never applied, and the batch goes on (no
    savepoint needed: parking is one upsert and nothing of the record was written)."""
    trace.get_current_span().set_status(Status(StatusCode.ERROR, exc.reason))
    letter = await deadletters.park(conn, projection.name, unverified(delivery), exc)
    if on_rejected is not None:  # reported in the same transaction (forgeries.py)
        await on_rejected(conn, letter, delivery, exc)
    outcome.parked.append((letter, exc))
    outcome.rejected[exc.reason] = outcome.rejected.get(exc.reason, 0) + 1


async def _apply_in_order(
    conn: AsyncConnection,
    projection: Projection,
    mapper: EventMapper,
    deliveries: Sequence[Delivery],
    keys: KeyCache,
    subject_lock: bool,
    span: SpanFor,
    floors: dict[str, datetime],
    on_rejected: RejectionHook | None,
    *,
    isolate: bool,
) -> Outcome:
    outcome = Outcome()
    for delivery in deliveries:
        with span(delivery):
            try:
                d = verified(mapper, delivery)
            except RejectedEvent as exc:
                await _park_rejected(conn, projection, delivery, exc, outcome, on_rejected)
                continue
            if not wants(projection, d.event_type):
                continue  # genuine, but nothing this projection applies
            try:
                async with conn.begin_nested() if isolate else contextlib.nullcontext():
                    applied = await apply_once(
                        conn,
                        projection,
                        mapper,
                        d.source,
                        d.event_id,
                        d.record,
                        keys,
                        recorded_at=d.recorded_at,
                        floor=floors.get(d.source),
                        subject_lock=subject_lock,
                    )
            except Exception as exc:
                if not isolate or is_transient(exc):
                    raise
                trace.get_current_span().set_status(Status(StatusCode.ERROR, type(exc).__name__))
                letter = await deadletters.park(conn, projection.name, d, exc)
                outcome.parked.append((letter, exc))
                continue
        if applied:
            outcome.applied.append(d.event_id)
        else:
            outcome.duplicates += 1
        last = outcome.recorded.get(d.source)
        if d.recorded_at is not None and (last is None or d.recorded_at > last):
            outcome.recorded[d.source] = d.recorded_at
    return outcome


@dataclass
class RunnerStats:
    applied: int = 0
    duplicates: int = 0
    errors: int = 0
    dead_lettered: int = 0  # events parked by this process since it started
    rejected: dict[str, int] = field(default_factory=dict)  # of those, refused per reason
    # Per source, while records of it wait (fetched, not yet known applied): since when.
    # The publication time of the oldest fetched while caught up, then the recording time of
    # the last record applied; gone once a fetch finds nothing new (ProjectionConsumer).
    behind_since: dict[str, datetime] = field(default_factory=dict)

    def lag_seconds(self, source: str, now: datetime) -> float:
        """`expensura_projection_lag_seconds`: 0 when caught up, else the seconds since
        `behind_since` (a consumer that fails its batch again and again falls behind)."""
        last = self.behind_since.get(source)
        return 0.0 if last is None else max(0.0, (now - last).total_seconds())


@dataclass(frozen=True)
class _KafkaDelivery(Delivery):
    topic: str = ""
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int | None = None
    offset: int | None = None


class ProjectionRunner:
    """Consumes the sources' topics and applies them to one projection."""

    def __init__(
        self,
        engine: AsyncEngine,
        mapper: EventMapper,
        projection: Projection,
        kafka: KafkaSettings,
        group_id: str,
        on_rejected: RejectionHook | None = None,
        *,
        service: str | None = None,
    ) -> None:
        self.engine, self.mapper, self.projection = engine, mapper, projection
        self.kafka, self.group_id = kafka, group_id
        self.on_rejected = on_rejected  # what else a refused record sets off (forgeries.py)
        self.stats = RunnerStats()
        # `expensura_projection_applied_total` (exported at 0 from the start); None: a runner
        # outside a service (tests, tools) counts nothing.
        self._applied = (
            None
            if service is None
            else PROJECTION_APPLIED.labels(service=service, projection=projection.name)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume this projection's sources alone (its own consumer group)."""
        await ProjectionConsumer([self], self.kafka, self.group_id).run(stop)

    async def _apply_batch(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        deliveries = [d for tp, msgs in batches.items() for d in self._deliveries(tp, msgs)]
        keys: KeyCache = {}
        try:
            # Almost every batch applies as a whole: without a savepoint first, and only if
            # an event fails deterministically, again in a new transaction that can park it.
            outcome = await self._apply_locked(deliveries, keys, savepoint=False)
        except Exception as failed:
            if is_transient(failed):
                raise
            outcome = await self._apply_locked(deliveries, keys, savepoint=True)
        # Counted and announced once committed: a batch that failed did none of it.
        self.stats.applied += len(outcome.applied)
        if self._applied is not None:
            self._applied.inc(len(outcome.applied))
        for source, recorded in outcome.recorded.items():
            self.stats.behind_since[source] = recorded
        self.stats.duplicates += outcome.duplicates
        self.stats.dead_lettered += len(outcome.parked)
        for reason, count in outcome.rejected.items():
            self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + count
        for letter, exc in outcome.parked:
            deadletters.announce(letter, exc)

    async def _apply_locked(
        self, deliveries: Sequence[Delivery], keys: KeyCache, *, savepoint: bool
    ) -> Outcome:
        async with self.engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": projection_lock_key(self.projection.name)},
            )
            return await apply_deliveries(
                conn,
                self.projection,
                self.mapper,
                deliveries,
                keys,
                resolved_by="redelivery",
                span=self._span,
                on_rejected=self.on_rejected,
                savepoint=savepoint,
            )

    def _deliveries(
        self, tp: TopicPartition, messages: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> Iterator[Delivery]:
        # The topic's owner is the only service whose signature counts. Headers are claims:
        # anyone can write them; everything but the signature is replaced by, or checked
        # against, the verified record (a bad one is parked, never skipped silently).
        source = topic_source(tp.topic)
        for msg in messages:
            headers = dict(msg.headers or ())
            seq = headers.get("seq", b"")
            event_type = headers.get("event_type")
            key_id = headers.get("key_id")
            yield _KafkaDelivery(
                source=source,
                event_id=headers.get("event_id", b"").decode(errors="replace"),
                record=msg.value or b"",
                seq=int(seq) if seq.isdigit() and len(seq) < 19 else None,
                event_type=event_type.decode(errors="replace")[:200] if event_type else None,
                signature=headers.get("signature"),
                key_id=key_id.decode(errors="replace") if key_id else None,
                topic=tp.topic,
                headers=list(msg.headers or ()),
                partition=tp.partition,
                offset=msg.offset,
            )

    @contextlib.contextmanager
    def _span(self, delivery: Delivery) -> Iterator[None]:
        assert isinstance(delivery, _KafkaDelivery)
        with tracer.start_as_current_span(
            f"{self.projection.name} process",
            kind=SpanKind.CONSUMER,
            context=context_from_headers(delivery.headers),
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": delivery.topic,
                "messaging.consumer.group.name": self.group_id,
                "messaging.message.id": delivery.event_id,
                "expensura.projection": self.projection.name,
            },
            # An exception's text can carry values: the span gets its class name only.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    @staticmethod
    async def _commit(consumer: object, offsets: dict[TopicPartition, int]) -> None:
        # Only an optimisation: the inbox already made the work idempotent.
        try:
            await asyncio.wait_for(consumer.commit(offsets), 5)  # type: ignore[attr-defined]
        except (KafkaError, TimeoutError) as exc:
            log.info("projection.offset_commit_failed", **error_fields(exc))


FETCH_RECORDS = 500  # records per fetch, at most


class ProjectionConsumer:
    """One Kafka consumer for several projections of a service: it reads the union of their
    sources and hands each projection the partitions of its own sources, each projection in
    a transaction of its own, as its runner would.

    Why one consumer: the local broker (Tansu) answers a fetch only when its wait is over, so
    every consumer is a poller; one per service instead of one per projection is a fraction
    of the idle fetches for the broker and the service. The inbox makes redelivery harmless,
    so a batch that fails for one projection is simply read again by all: the others find
    it applied. Offsets are committed once every projection has applied the batch."""

    def __init__(
        self, runners: Sequence[ProjectionRunner], kafka: KafkaSettings, group_id: str
    ) -> None:
        self.runners, self.kafka, self.group_id = list(runners), kafka, group_id

    def _note_fetched(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """The lag's bookkeeping (RunnerStats.behind_since) at each fetch: a source that
        brought records and was caught up is behind since the oldest of them was published;
        a fetch short of its limit brought everything waiting, so a source it brought nothing
        of has nothing waiting: caught up."""
        oldest: dict[str, datetime] = {}
        for tp, msgs in batches.items():
            source = topic_source(tp.topic)
            for msg in msgs[:1]:  # a partition's first record is its oldest
                # the broker's time of the record (its producer's); none known: now
                at = (
                    datetime.fromtimestamp(msg.timestamp / 1000, UTC)
                    if msg.timestamp > 0
                    else utcnow()
                )
                oldest[source] = min(at, oldest.get(source, at))
        short = sum(len(msgs) for msgs in batches.values()) < FETCH_RECORDS
        for runner in self.runners:
            behind = runner.stats.behind_since
            for source in runner.projection.sources:
                if source in oldest:
                    behind.setdefault(source, oldest[source])
                elif short:
                    behind.pop(source, None)

    async def run(self, stop: asyncio.Event) -> None:
        sources = sorted({src for r in self.runners for src in r.projection.sources})
        if not sources:
            return
        topics = [self.kafka.topic(src) for src in sources]
        backoff = 0.2
        while not stop.is_set():
            consumer = new_consumer(self.kafka, topics, self.kafka.group(self.group_id))
            failing: ProjectionRunner | None = None
            try:
                await consumer.start()
                pending: dict[TopicPartition, int] = {}
                last_commit = time.monotonic()
                pace = FetchPace(
                    self.kafka.fetch_max_wait_ms,
                    self.kafka.fetch_idle_wait_ms,
                    self.kafka.fetch_idle_after_s,
                    last_commit,
                )
                while not stop.is_set():
                    # Records end the wait at once; an idle consumer's loop turns once per
                    # fetch wait (1 s idle), not five times a second for nothing.
                    batches = await consumer.getmany(
                        timeout_ms=max(200, pace.wait_ms), max_records=FETCH_RECORDS
                    )
                    if (wait_ms := pace.observe(bool(batches), time.monotonic())) is not None:
                        FetchPace.apply(consumer, wait_ms)
                    self._note_fetched(batches)
                    if batches:
                        for runner in self.runners:
                            mine = {
                                tp: msgs
                                for tp, msgs in batches.items()
                                if topic_source(tp.topic) in runner.projection.sources
                            }
                            if mine:
                                failing = runner
                                # One transaction per projection, each partition in its order.
                                await runner._apply_batch(mine)
                        failing = None
                        pending |= {tp: msgs[-1].offset + 1 for tp, msgs in batches.items()}
                    # Offsets only save work after a restart (the inbox already dedupes), so
                    # they are committed at most once a second, not per message.
                    if pending and (time.monotonic() - last_commit > 1.0 or stop.is_set()):
                        await ProjectionRunner._commit(consumer, pending)
                        pending, last_commit = {}, time.monotonic()
                    backoff = 0.2
                if pending:
                    await ProjectionRunner._commit(consumer, pending)
            except Exception as exc:  # broker or database trouble: start over, lose nothing
                for runner in [failing] if failing is not None else self.runners:
                    runner.stats.errors += 1
                log.warning(
                    "projection.unavailable" if is_unavailable(exc) else "projection.failed",
                    projection=failing.projection.name if failing is not None else None,
                    group=self.group_id,
                    retry_in=backoff,
                    **error_fields(exc),
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    await asyncio.wait_for(consumer.stop(), 5)
                except Exception as exc:
                    log.debug("projection.consumer_stop_failed", **error_fields(exc))


class LogFeed(Protocol):
    """A source's log in sequence order, as stored."""

    source: str

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]: ...


class LocalLogFeed:
    """The service's own log, read from its own database."""

    def __init__(self, engine: AsyncEngine, source: str, event_types: Sequence[str] = ()) -> None:
        self.engine, self.source, self.event_types = engine, source, tuple(event_types)
        self.head: int | None = None  # the log's last sequence number, as of the last read

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        async with self.engine.connect() as conn:
            self.head, _ = await EventStore.head(conn)
            return await EventStore.read_records(conn, after_seq, limit, self.event_types)


class HttpLogFeed:
    """Another service's log through its `GET /internal/log` feed (never its tables)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        source: str,
        headers: Callable[[], dict[str, str]] = dict,
        event_types: Sequence[str] = (),
    ) -> None:
        self.client, self.base_url, self.source = client, base_url.rstrip("/"), source
        self.headers = headers  # fresh per page: the reader's service token (a minute each)
        self.event_types = list(event_types)  # only these types (all when empty)
        self.head: int | None = None  # the log's last sequence number, as of the last read

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        params: dict[str, Any] = {"after": after_seq, "limit": limit}
        if self.event_types:
            params["event_type"] = self.event_types
        resp = await self.client.get(
            f"{self.base_url}/internal/log",
            params=params,
            headers=self.headers(),
        )
        resp.raise_for_status()
        body = resp.json()
        self.head = body.get("head")
        return [
            StoredRecord(
                item["seq"],
                item["event_id"],
                item["event_type"],
                item["stream_id"],
                item["subject_id"],
                item["record"].encode(),
                bytes.fromhex(item["hash"]),
                base64.b64decode(item["signature"]) if item.get("signature") else None,
                item.get("signing_key_id"),
            )
            for item in body["events"]
        ]


@dataclass
class RebuildOutcome:
    applied: int = 0
    duplicates: int = 0
    parked: list[DeadLetter] = field(default_factory=list)


async def rebuild(
    engine: AsyncEngine,
    mapper: EventMapper,
    projection: Projection,
    feeds: Sequence[LogFeed],
    *,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> RebuildOutcome:
    """Empty the read model and replay every source from its first event, in one transaction.

    Each page of a feed is applied as a batch (`_apply_rebuilding`): every record verified
    as any delivery is, then a few statements for the page (inbox rows, erased subjects,
    keys), and the read model's `apply_many`. `progress` is told how many positions of a
    source's log each page covered (a feed's `head`, where it has one, is the total).

    Events that cannot apply are parked (dead letters), not fatal; events an operator
    skipped stay skipped. Any other failure (a feed or the database unavailable) rolls the
    whole rebuild back: the read model ends as it started, never emptier.
    """
    result = RebuildOutcome()
    parked: list[tuple[DeadLetter, BaseException]] = []
    keys: KeyCache = {}  # for the whole rebuild: the keys of records that exist exist
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": projection_lock_key(projection.name)}
        )
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": purge_lock_key(projection.name)}
        )
        for table in projection.tables:
            await conn.execute(delete(table))
        skipped = select(dead_letters_table.c.event_id).where(
            dead_letters_table.c.projection == projection.name,
            dead_letters_table.c.status == deadletters.SKIPPED,
        )
        await conn.execute(
            delete(projection_inbox).where(
                projection_inbox.c.projection == projection.name,
                projection_inbox.c.event_id.not_in(skipped),
            )
        )
        # Replayed from the first event, every applied event gets its inbox row back.
        await conn.execute(
            delete(projection_inbox_floors).where(
                projection_inbox_floors.c.projection == projection.name
            )
        )
        for feed in feeds:
            after = 0
            while records := await feed.read(after, batch):
                outcome = await _apply_rebuilding(
                    conn,
                    projection,
                    mapper,
                    [
                        Delivery(
                            feed.source,
                            r.event_id,
                            r.record,
                            r.seq,
                            r.event_type,
                            r.signature,
                            r.signing_key_id,
                        )
                        for r in records
                    ],
                    keys,
                )
                result.applied += len(outcome.applied)
                result.duplicates += outcome.duplicates
                parked += outcome.parked
                if progress is not None:
                    progress(records[-1].seq - after)
                after = records[-1].seq
    for letter, exc in parked:  # committed: announce
        deadletters.announce(letter, exc)
        result.parked.append(letter)
    return result


# A batch's inbox rows in one statement of three arrays (a VALUES list would take 5
# parameters a row, and SQLAlchemy would compile it anew for every batch).
INBOX_ROWS = text(
    "INSERT INTO projection_inbox (projection, event_id, source, applied_at, recorded_at)"
    " SELECT :projection, e, s, :applied_at, r"
    " FROM unnest(CAST(:event_ids AS uuid[]), CAST(:sources AS text[]),"
    " CAST(:recorded_at AS timestamptz[])) AS u(e, s, r)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


# The subjects' shared locks of a batch (see `apply_once`), taken in the array's order.
SUBJECT_LOCKS = text(
    "SELECT count(pg_advisory_xact_lock_shared(k)) FROM unnest(CAST(:keys AS bigint[])) AS u(k)"
)


async def _apply_rebuilding(
    conn: AsyncConnection,
    projection: Projection,
    mapper: EventMapper,
    deliveries: Sequence[Delivery],
    keys: KeyCache,
) -> Outcome:
    """A rebuild's batch: what `apply_deliveries` does to a projection whose inbox floors the
    rebuild removed and whose purge lock it holds, with statements per batch rather than
    per event. Each record is verified (refusals parked, as ever); the inbox rows of the
    genuine ones are inserted at once, and those already there (an operator's skip, a record
    seen twice) are duplicates; the keys of their subjects are read at once, and so are
    which of them are erased (their events count as applied, never reach the read model);
    then the read model applies the rest in order (`Projection.apply_many`). If that fails
    in a way a retry cannot fix, the batch is applied again event by event with a savepoint
    each (`_apply_in_order`), so only the failing events are parked."""
    outcome = Outcome()
    genuine: list[tuple[Delivery, dict[str, Any]]] = []
    for delivery in deliveries:
        try:
            d, data = _verified(mapper, delivery)
        except RejectedEvent as exc:
            letter = await deadletters.park(conn, projection.name, unverified(delivery), exc)
            outcome.parked.append((letter, exc))
            outcome.rejected[exc.reason] = outcome.rejected.get(exc.reason, 0) + 1
            continue
        if wants(projection, d.event_type):
            genuine.append((d, data))
    try:
        async with conn.begin_nested():
            applied, duplicates = await _apply_batch(
                conn, projection, mapper, genuine, keys, subject_lock=False
            )
        outcome.applied += applied
        outcome.duplicates += duplicates
    except Exception as exc:
        if is_transient(exc):
            raise
        one_by_one = await _apply_in_order(
            conn,
            projection,
            mapper,
            [d for d, _ in genuine],
            keys,
            False,
            _no_span,
            {},
            None,  # a rebuild reports no forgery: the live runner did when it parked it
            isolate=True,
        )
        outcome.applied += one_by_one.applied
        outcome.duplicates += one_by_one.duplicates
        outcome.parked += one_by_one.parked
    await deadletters.resolve_applied(conn, projection.name, outcome.applied, "rebuild")
    return outcome


async def _apply_batch(
    conn: AsyncConnection,
    projection: Projection,
    mapper: EventMapper,
    genuine: Sequence[tuple[Delivery, dict[str, Any]]],
    keys: KeyCache,
    *,
    subject_lock: bool,
) -> tuple[list[str], int]:
    """Verified records applied as `apply_once` applies each in turn, in a few statements:
    the applied event ids and the number of duplicates (see `_apply_rebuilding`). With
    `subject_lock`, the subjects' locks are taken shared before reading which are erased,
    as `apply_once` does (a rebuild holds the purge lock instead)."""
    if not genuine:
        return [], 0
    # The keys come from the key store's own database: looked up while the inbox rows are
    # written, not after (a duplicate's key is looked up for nothing, a rare waste).
    inserted, _ = await asyncio.gather(
        conn.execute(
            INBOX_ROWS,
            {
                "projection": projection.name,
                "applied_at": utcnow(),
                "event_ids": [d.event_id for d, _ in genuine],
                "sources": [d.source for d, _ in genuine],
                "recorded_at": [d.recorded_at for d, _ in genuine],
            },
        ),
        mapper.cipher.prefetch(
            {
                key_owner(data["subject_id"], data.get("retention_hold"))
                for _, data in genuine
                if data.get("subject_id")
            },
            keys,
        ),
    )
    fresh = {str(r) for r in inserted.scalars()}
    first: list[tuple[Delivery, dict[str, Any]]] = []
    for d, data in genuine:
        event_id = str(uuid.UUID(d.event_id))  # as the inbox gives it back (the verifier
        if event_id in fresh:  # made sure it is a UUID)
            fresh.discard(event_id)  # a record twice in the batch applies once
            first.append((d, data))
    if not first:
        return [], len(genuine)
    events = [await mapper.from_fields(dict(data), keys=keys) for _, data in first]
    erased: set[str] = set()
    if not projection.follows_erased_subjects:
        subjects = sorted({e.subject_id for e in events if e.subject_id is not None})
        if subject_lock and subjects:
            # In one statement, in key order: two batches never wait on each other's locks
            # in opposite orders (they are shared anyway; an erasure takes one exclusively).
            await conn.execute(
                SUBJECT_LOCKS, {"keys": sorted({subject_lock_key(s) for s in subjects})}
            )
        found = await conn.execute(
            select(subject_restrictions.c.subject_id).where(
                subject_restrictions.c.subject_id == func.any(cast(subjects, ARRAY(Text))),
                subject_restrictions.c.state == Restriction.ERASED.value,
            )
        )
        erased.update(found.scalars())
    await projection.apply_many(conn, [e for e in events if e.subject_id not in erased])
    return [d.event_id for d, _ in first], len(genuine) - len(first)


class DeadLetterNotFound(LookupError):
    pass


@dataclass(frozen=True)
class RetryResult:
    letter: DeadLetter
    applied: bool  # False: it failed again (letter.status is `retried`)
    error: str | None = None


async def retry_dead_letter(
    engine: AsyncEngine,
    mapper: EventMapper,
    projection: Projection,
    feed: LogFeed,
    event_id: str,
    by: str,
) -> RetryResult:
    """Read the event again from its source's log and apply it; resolved if it applies,
    `retried` (still open) if it fails again deterministically. A transient failure raises."""
    async with engine.connect() as conn:
        found = await deadletters.find(conn, projection=projection.name, event_id=event_id)
    if not found:
        raise DeadLetterNotFound(f"no dead letter {event_id} in {projection.name}")
    letter = found[0]
    stored = await _read_one(feed, event_id, letter.seq)
    record = stored.record
    delivery = Delivery(
        letter.source,
        event_id,
        record,
        letter.seq,
        letter.event_type,
        stored.signature,
        stored.signing_key_id,
    )
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": projection_lock_key(projection.name)}
        )
        # A skipped event has an inbox row that would make it a duplicate: retrying undoes
        # the skip.
        await conn.execute(
            delete(projection_inbox).where(
                projection_inbox.c.projection == projection.name,
                projection_inbox.c.event_id == event_id,
            )
        )
        try:
            genuine = verified(mapper, delivery)  # the log's copy must pass as any delivery
            async with conn.begin_nested():
                # No floor: an operator's retry applies the event even if the floor passed it.
                await apply_once(
                    conn,
                    projection,
                    mapper,
                    delivery.source,
                    event_id,
                    record,
                    {},
                    recorded_at=genuine.recorded_at,
                )
        except Exception as exc:
            if is_transient(exc):
                raise
            await deadletters.mark_retried(conn, projection.name, event_id, exc)
            failure: BaseException | None = exc
        else:
            failure = None
            await conn.execute(
                update(dead_letters_table)
                .where(
                    dead_letters_table.c.projection == projection.name,
                    dead_letters_table.c.event_id == event_id,
                )
                .values(status=deadletters.RESOLVED, resolved_by=by, resolved_at=utcnow())
            )
        [letter] = await deadletters.find(conn, projection=projection.name, event_id=event_id)
    log.info(
        "projection.dead_letter_retried",
        projection=projection.name,
        event_id=event_id,
        applied=failure is None,
        by=by,
        **(error_fields(failure) if failure is not None else {}),
    )
    return RetryResult(letter, failure is None, letter.error if failure is not None else None)


async def _read_one(feed: LogFeed, event_id: str, seq: int | None) -> StoredRecord:
    """The stored record of `event_id` from the source's log feed."""
    if seq is not None and seq > 0:
        records = await feed.read(seq - 1, 1)
        if records and records[0].event_id == event_id:
            return records[0]
    after = 0  # no (or a wrong) sequence number: look through the log
    while records := await feed.read(after, 1000):
        for r in records:
            if r.event_id == event_id:
                return r
        after = records[-1].seq
    raise DeadLetterNotFound(f"event {event_id} is not in {feed.source}'s log")
