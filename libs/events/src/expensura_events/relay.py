"""The transactional outbox relay: publishes what the log committed, in order, at least once.

The log itself is the outbox (its sequence is gap-free and commits in order), so the relay
only keeps a position. It publishes a batch, waits for every acknowledgement (acks=all),
then advances the position: a crash in between republishes the batch, which consumers
absorb through their inbox. One relay per database holds a session advisory lock, so extra
replicas wait instead of publishing out of order.

When the broker loses its data (a restart of an in-memory broker, a deleted topic), the
relay republishes the whole log from the start. It knows because it keeps, beside its
position, the highest offset the broker acknowledged on each partition
(`relay_partition_offsets`), so the knowledge survives a restart of the relay too. On
start, and then every `topic_check_interval` seconds while events flow (every
`IDLE_TOPIC_CHECK_S` while none do: an idle stack sleeps), it asks the broker: a missing topic,
or a partition we published to that is now empty (end offset 0), means the data is gone.
Tansu under-reports end offsets, so nothing but "empty" is read into them. Acknowledged
offsets are exact: one lower than recorded also means the data is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from opentelemetry.trace import SpanKind
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.db_errors import error_fields, is_unavailable
from expensura_events.envelope import TraceContext, utcnow
from expensura_events.kafka import KafkaSettings, end_offsets, ensure_topics, new_producer
from expensura_events.metrics import RELAY_PUBLISHED
from expensura_events.sequencer import sequence_pending
from expensura_events.store import EventStore, StoredRecord
from expensura_events.tables import event_log_pending, relay_partition_offsets, relay_position
from expensura_events.tracing import context_from_envelope, inject_headers, tracer

log = structlog.get_logger("expensura.relay")

RELAY_LOCK = 0x52454C4159  # "RELAY"
# An idle relay (nothing published in its last round) wakes this often: an idle stack sleeps.
IDLE_WAKE_S = 5.0


@dataclass
class RelayStats:
    published: int = 0
    republish_from_start: int = 0
    last_seq: int = 0
    errors: int = 0
    # Highest acknowledged offset per partition, as recorded in relay_partition_offsets.
    partition_offsets: dict[int, int] = field(default_factory=dict)


IDLE_TOPIC_CHECK_S = 10.0


def message_key(rec: StoredRecord) -> bytes:
    """Partition by data subject so each subject's events stay in order; else by stream."""
    return (rec.subject_id or rec.stream_id).encode()


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        kafka: KafkaSettings,
        source: str,
        topic: str,
        *,
        batch_size: int = 500,
        idle_interval: float = 0.02,
        topic_check_interval: float = 1.0,
        lock_check_interval: float = 1.0,
        crash_after_publish: bool = False,
    ) -> None:
        self.engine, self.kafka, self.source, self.topic = engine, kafka, source, topic
        self.batch_size, self.idle_interval = batch_size, idle_interval
        self.topic_check_interval = topic_check_interval
        self.lock_check_interval = lock_check_interval
        # Fault drill: die after the broker acknowledged a batch but before the position is
        # saved, the worst moment for an at-least-once relay.
        self.crash_after_publish = crash_after_publish
        self.stats = RelayStats()
        self._published = RELAY_PUBLISHED.labels(service=source)  # exported at 0 from start
        self._producer: AIOKafkaProducer | None = None
        self._last_topic_check = 0.0
        self._busy = True  # until a read finds nothing new
        self._offsets_loaded = False

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; survives broker and database outages by retrying.

        The advisory lock lives in a database session: a database restart ends the session
        and releases it, so the relay checks its session every `lock_check_interval` and
        takes the lock again (on a new session) when it is gone.
        """
        backoff = 0.1
        while not stop.is_set():
            try:
                async with self.engine.connect() as lock_conn:
                    if not await self._take_lock(lock_conn, stop):
                        return
                    try:
                        await self._publish_while_locked(lock_conn, stop)
                    finally:
                        await self._drop_producer()
                        # A session that died has released the lock already.
                        with contextlib.suppress(Exception):
                            await lock_conn.execute(
                                text("SELECT pg_advisory_unlock(:k)"), {"k": RELAY_LOCK}
                            )
                            await lock_conn.commit()
            except Exception as exc:  # the lock's session failed: take the lock again
                self.stats.errors += 1
                log.warning("relay.lock_lost", retry_in=backoff, **error_fields(exc))
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _take_lock(self, lock_conn: AsyncConnection, stop: asyncio.Event) -> bool:
        while not stop.is_set():
            got = (
                await lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": RELAY_LOCK})
            ).scalar_one()
            await lock_conn.commit()
            if got:
                return True
            await _sleep_or_stop(stop, 1.0)
        return False

    async def _publish_while_locked(self, lock_conn: AsyncConnection, stop: asyncio.Event) -> None:
        appended = asyncio.Event()
        unlisten = await _listen(lock_conn, appended)
        # Woken by the log's notification when the sequencer moves records in; the wait's
        # end is only a fallback: the pace of the lock check, which also sequences what a
        # writer committed and never sequenced (it died in between), and of the broker
        # check. An idle relay wakes every IDLE_WAKE_S. Without a listener: poll.
        idle_wait = max(self.lock_check_interval, IDLE_WAKE_S) if unlisten else self.idle_interval
        try:
            await self._publish_until_stopped(lock_conn, stop, appended, idle_wait)
        finally:
            if unlisten is not None:
                with contextlib.suppress(Exception):
                    await unlisten()

    async def _publish_until_stopped(
        self,
        lock_conn: AsyncConnection,
        stop: asyncio.Event,
        appended: asyncio.Event,
        idle_wait: float,
    ) -> None:
        backoff = 0.1
        lock_checked = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - lock_checked >= self.lock_check_interval:
                # Raises if the session (lock) is gone. It also sequences what writers
                # committed and did not sequence (one that crashed in between, one that
                # appended through a plain connection): usually nothing, and then cheap.
                swept = await sequence_pending(lock_conn)
                await lock_conn.commit()
                lock_checked = time.monotonic()
                if swept.moved:
                    log.info("relay.sequenced_pending", events=swept.moved)
            try:
                appended.clear()  # before reading: a commit after this read wakes the wait
                sent = await self.publish_batch()
                backoff = 0.1
                if sent == 0:
                    await _wait_for_either(stop, appended, idle_wait)
            except (TimeoutError, KafkaError, OSError) as exc:
                self.stats.errors += 1
                log.warning("relay.publish_failed", retry_in=backoff, **error_fields(exc))
                await self._drop_producer()
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # database down and the like: retry, never die
                self.stats.errors += 1
                # Either way the relay retries: it may skip nothing, the log is ordered.
                log.warning(
                    "relay.unavailable" if is_unavailable(exc) else "relay.failed",
                    retry_in=backoff,
                    **error_fields(exc),
                )
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)
                lock_checked = 0.0  # the database may have restarted: is the lock still ours?

    async def publish_batch(self) -> int:
        """Publish the next batch after the stored position; return how many were sent."""
        # On start, then every `topic_check_interval` while events flow; an idle relay asks
        # the broker only every IDLE_TOPIC_CHECK_S (a lost topic is found as surely, later:
        # an idle stack should sleep, and republishing from the start repairs any delay).
        now = time.monotonic()
        every = self.topic_check_interval
        if not self._busy:
            every = max(every, IDLE_TOPIC_CHECK_S)
        if now - self._last_topic_check >= every:
            await self.check_broker()
            self._last_topic_check = now
        async with self.engine.connect() as conn:
            position = await self._position(conn)
            records = await EventStore.read_records(conn, position, self.batch_size)
        self._busy = bool(records)
        if not records:
            return 0
        producer = await self._producer_started()
        pending = []
        for rec in records:
            header = json.loads(rec.record)
            tc = TraceContext.model_validate(header["trace"]) if header.get("trace") else None
            with tracer.start_as_current_span(
                f"{self.topic} publish",
                context=context_from_envelope(tc),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": self.topic,
                    "messaging.message.id": rec.event_id,
                    "expensura.event_type": rec.event_type,
                    "expensura.seq": rec.seq,
                },
            ):
                headers = [
                    *inject_headers(),
                    ("event_type", rec.event_type.encode()),
                    ("event_id", rec.event_id.encode()),
                    ("seq", str(rec.seq).encode()),
                    ("source", self.source.encode()),
                ]
                # The signature stored at append, as it is: the relay holds no key, and a
                # record appended unsigned goes out unsigned (its consumers refuse it).
                if rec.signature is not None and rec.signing_key_id is not None:
                    headers += [
                        ("signature", rec.signature),
                        ("key_id", rec.signing_key_id.encode()),
                        ("signer", self.source.encode()),
                    ]
                pending.append(
                    await producer.send(
                        self.topic, rec.record, key=message_key(rec), headers=headers
                    )
                )
        metas: list[RecordMetadata] = await asyncio.gather(*pending)
        if self.crash_after_publish:
            log.warning("relay.fault_drill_crash", published_up_to=records[-1].seq)
            os._exit(70)
        acked: dict[int, int] = {}
        for meta in metas:
            partition, offset = meta.partition, meta.offset
            acked[partition] = max(offset, acked.get(partition, -1))
        if any(o < self.stats.partition_offsets.get(p, -1) for p, o in acked.items()):
            await self._broker_lost("partition offsets went backwards")
            return len(records)
        async with self.engine.begin() as conn:
            await _no_flush_wait(conn)
            await self._save_position(conn, records[-1].seq)
            await self._save_offsets(conn, acked)
        self.stats.partition_offsets |= acked
        self.stats.published += len(records)
        self.stats.last_seq = records[-1].seq
        self._published.inc(len(records))
        return len(records)

    async def lag(self) -> int:
        """Events committed that no relay has published yet: the log's head minus the saved
        position (the database's, so every replica reads the same), plus the committed
        records still waiting for the sequencer (a sequencer that stopped shows here)."""
        async with self.engine.connect() as conn:
            head, _ = await EventStore.head(conn)
            unsequenced = await conn.scalar(select(func.count()).select_from(event_log_pending))
            return max(0, head - await self._position(conn)) + int(unsequenced or 0)

    async def check_broker(self) -> None:
        """Republish from the start if the broker lost what we published (see module doc)."""
        if not self._offsets_loaded:
            async with self.engine.connect() as conn:
                rows = await conn.execute(
                    select(
                        relay_partition_offsets.c.partition, relay_partition_offsets.c.max_offset
                    ).where(relay_partition_offsets.c.topic == self.topic)
                )
                self.stats.partition_offsets = {int(p): int(o) for p, o in rows}
            self._offsets_loaded = True
        ends = await end_offsets(self.kafka, self.topic)
        if ends is None:
            await self._broker_lost("topic missing")
            return
        emptied = sorted(p for p in self.stats.partition_offsets if ends.get(p, 0) == 0)
        if emptied:
            await self._broker_lost(f"partitions {emptied} we published to are empty")

    async def _broker_lost(self, why: str) -> None:
        log.warning(
            "relay.broker_lost_data",
            topic=self.topic,
            reason=why,
            action="republishing the whole log",
        )
        await ensure_topics(self.kafka, [self.topic])
        async with self.engine.begin() as conn:
            await self._save_position(conn, 0)
            await conn.execute(
                delete(relay_partition_offsets).where(relay_partition_offsets.c.topic == self.topic)
            )
        self.stats.partition_offsets.clear()
        self.stats.republish_from_start += 1

    async def _save_offsets(self, conn: AsyncConnection, acked: dict[int, int]) -> None:
        if not acked:
            return
        now = utcnow()
        stmt = insert(relay_partition_offsets).values(
            [
                {"topic": self.topic, "partition": p, "max_offset": o, "updated_at": now}
                for p, o in sorted(acked.items())
            ]
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["topic", "partition"],
                set_={
                    "max_offset": func.greatest(
                        relay_partition_offsets.c.max_offset, stmt.excluded.max_offset
                    ),
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )

    async def _position(self, conn: AsyncConnection) -> int:
        value = (
            await conn.execute(
                relay_position.select()
                .with_only_columns(relay_position.c.last_seq)
                .where(relay_position.c.topic == self.topic)
            )
        ).scalar_one_or_none()
        return int(value or 0)

    async def _save_position(self, conn: AsyncConnection, seq: int) -> None:
        stmt = insert(relay_position).values(topic=self.topic, last_seq=seq, updated_at=utcnow())
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["topic"], set_={"last_seq": seq, "updated_at": utcnow()}
            )
        )

    async def _producer_started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = new_producer(self.kafka)
            await producer.start()
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception as exc:
                log.debug("relay.producer_stop_failed", **error_fields(exc))


async def _no_flush_wait(conn: AsyncConnection) -> None:
    """This transaction's commit does not wait for its WAL flush: the relay's next batch
    waited for it (the latency bench, on a disk other writers keep busy). Only a crash of
    PostgreSQL itself can lose such a commit, and then the position and offsets go back to
    an earlier batch: that batch is published again (consumers' inbox absorbs it), and an
    offset recorded lower than the broker's never reads as lost data."""
    await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))


APPENDED_CHANNEL = "event_log_appended"  # notified at commit by eventstore_0005's trigger


async def _listen(
    conn: AsyncConnection, appended: asyncio.Event
) -> Callable[[], Awaitable[None]] | None:
    """LISTEN for the log's appends on the relay's own session (the one holding its lock);
    returns how to stop listening, or None when the driver cannot listen (then it polls)."""
    try:
        driver = (await conn.get_raw_connection()).driver_connection

        def woken(*_: object) -> None:
            appended.set()

        await driver.add_listener(APPENDED_CHANNEL, woken)  # type: ignore[union-attr]
    except Exception as exc:
        log.warning("relay.listen_failed", action="polling", **error_fields(exc))
        return None

    async def unlisten() -> None:
        await driver.remove_listener(APPENDED_CHANNEL, woken)  # type: ignore[union-attr]

    return unlisten


async def _wait_for_either(stop: asyncio.Event, appended: asyncio.Event, seconds: float) -> None:
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(appended.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
