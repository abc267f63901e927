"""The transactional outbox relay: publishes what the log committed, in order, at least once.

The log itself is the outbox (its sequence is gap-free and commits in order), so the relay
only keeps a position. It publishes a batch, waits for every acknowledgement (acks=all),
then advances the position: a crash in between republishes the batch, which consumers
absorb through their inbox. One relay per database holds a session advisory lock, so extra
replicas wait instead of publishing out of order.

When the broker loses its data (a restart of an in-memory broker, a deleted topic), the
relay notices the topic missing, or partition offsets going backwards, and republishes the
whole log from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.envelope import TraceContext, utcnow
from expensura_events.kafka import KafkaSettings, ensure_topics, existing_topics, new_producer
from expensura_events.store import EventStore, StoredRecord
from expensura_events.tables import relay_position
from expensura_events.tracing import context_from_envelope, inject_headers, tracer

log = structlog.get_logger("expensura.relay")

RELAY_LOCK = 0x52454C4159  # "RELAY"


@dataclass
class RelayStats:
    published: int = 0
    republish_from_start: int = 0
    last_seq: int = 0
    errors: int = 0
    partition_offsets: dict[int, int] = field(default_factory=dict)


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
        crash_after_publish: bool = False,
    ) -> None:
        self.engine, self.kafka, self.source, self.topic = engine, kafka, source, topic
        self.batch_size, self.idle_interval = batch_size, idle_interval
        self.topic_check_interval = topic_check_interval
        # Fault drill: die after the broker acknowledged a batch but before the position is
        # saved, the worst moment for an at-least-once relay.
        self.crash_after_publish = crash_after_publish
        self.stats = RelayStats()
        self._producer: AIOKafkaProducer | None = None
        self._last_topic_check = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; survives broker and database outages by retrying."""
        async with self.engine.connect() as lock_conn:
            while not stop.is_set():
                got = (
                    await lock_conn.execute(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": RELAY_LOCK}
                    )
                ).scalar_one()
                await lock_conn.commit()
                if got:
                    break
                await _sleep_or_stop(stop, 1.0)
            backoff = 0.1
            try:
                while not stop.is_set():
                    try:
                        sent = await self.publish_batch()
                        backoff = 0.1
                        if sent == 0:
                            await _sleep_or_stop(stop, self.idle_interval)
                    except (TimeoutError, KafkaError, OSError) as exc:
                        self.stats.errors += 1
                        log.warning("relay.publish_failed", error=repr(exc), retry_in=backoff)
                        await self._drop_producer()
                        await _sleep_or_stop(stop, backoff)
                        backoff = min(backoff * 2, 5.0)
                    except Exception as exc:  # database down and the like: retry, never die
                        self.stats.errors += 1
                        log.warning("relay.failed", error=repr(exc), retry_in=backoff)
                        await _sleep_or_stop(stop, backoff)
                        backoff = min(backoff * 2, 5.0)
            finally:
                await self._drop_producer()
                await lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RELAY_LOCK})
                await lock_conn.commit()

    async def publish_batch(self) -> int:
        """Publish the next batch after the stored position; return how many were sent."""
        now = time.monotonic()
        if now - self._last_topic_check >= self.topic_check_interval:
            self._last_topic_check = now
            if self.topic not in await existing_topics(self.kafka):
                await self._broker_lost("topic missing")
        async with self.engine.connect() as conn:
            position = await self._position(conn)
            records = await EventStore.read_records(conn, position, self.batch_size)
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
                pending.append(
                    await producer.send(
                        self.topic, rec.record, key=message_key(rec), headers=headers
                    )
                )
        metas = await asyncio.gather(*pending)
        if self.crash_after_publish:
            log.warning("relay.fault_drill_crash", published_up_to=records[-1].seq)
            os._exit(70)
        if self._offsets_went_backwards(metas):
            await self._broker_lost("partition offsets went backwards")
            return len(records)
        async with self.engine.begin() as conn:
            await self._save_position(conn, records[-1].seq)
        self.stats.published += len(records)
        self.stats.last_seq = records[-1].seq
        return len(records)

    def _offsets_went_backwards(self, metas: list[object]) -> bool:
        backwards = False
        for meta in metas:
            partition, offset = meta.partition, meta.offset  # type: ignore[attr-defined]
            if offset < self.stats.partition_offsets.get(partition, -1):
                backwards = True
            self.stats.partition_offsets[partition] = offset
        return backwards

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
        self.stats.partition_offsets.clear()
        self.stats.republish_from_start += 1

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
                log.debug("relay.producer_stop_failed", error=repr(exc))


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
