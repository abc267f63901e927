"""Counts that explain the figures: database round trips per append, the relay's periodic
topic check, and how long the broker keeps a consumer's fetch waiting."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.stats import ms, percentile
from bench.workloads import RoundTripCounter, encrypted_event, kafka_settings, plain_event
from expensura_events.envelope import EventEnvelope
from expensura_events.kafka import KafkaSettings, ensure_topics, existing_topics
from expensura_events.runtime import ServiceRuntime


@dataclass(frozen=True)
class AppendTrips:
    path: str
    events: int
    subjects: int
    log_statements: int
    keystore_statements: int
    keystore_transactions: int


@dataclass(frozen=True)
class Diagnostics:
    appends: list[AppendTrips]
    topic_check_ms: dict[str, float]  # one existing_topics() call: a new admin client
    fetch_delay_ms: dict[int, dict[str, float]]  # fetch_max_wait_ms -> produce-to-fetch delay


async def _count(
    rt: ServiceRuntime,
    path: str,
    events: Sequence[EventEnvelope],
    append: Callable[..., Awaitable[list[EventEnvelope]]],
) -> AppendTrips:
    with RoundTripCounter(rt.engine) as log, RoundTripCounter(rt.keystore_engine) as keys:
        async with rt.engine.begin() as conn:
            await append(conn, list(events))
    subjects = len({e.subject_id for e in events})
    return AppendTrips(
        path, len(events), subjects, log.statements, keys.statements, keys.transactions
    )


SUBJECTS_IN_MIXED_BATCH = 10


async def measure_diagnostics(rt: ServiceRuntime, batch: int) -> Diagnostics:
    subjects = [str(uuid.uuid4()) for _ in range(SUBJECTS_IN_MIXED_BATCH)]
    # The subjects' keys exist before counting: every count is the steady-state path.
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [encrypted_event(s, f"diag-{s}") for s in subjects])
    appends = []
    for path, make, append in (
        ("EventStore.append, 1 personal field", encrypted_event, rt.store.append),
        ("EventStore.append, no personal field", plain_event, rt.store.append),
        ("ServiceRuntime.append, 1 personal field", encrypted_event, rt.append),
    ):
        for n, among in ((1, 1), (batch, 1), (batch, SUBJECTS_IN_MIXED_BATCH)):
            events = [make(subjects[k % among], f"diag-{subjects[k % among]}", k) for k in range(n)]
            appends.append(await _count(rt, path, events, append))

    kafka = kafka_settings(rt)
    fetch = {wait: await fetch_delay(kafka, wait) for wait in PROBE_WAITS}
    timings = []
    for _ in range(20):
        began = time.perf_counter()
        await existing_topics(kafka)
        timings.append(time.perf_counter() - began)
    return Diagnostics(
        appends,
        {"p50": ms(percentile(timings, 50)), "max": ms(max(timings))},
        fetch,
    )


PROBE_WAITS = (500, 5)  # aiokafka's default fetch_max_wait_ms (the runner's), and 5 ms
PROBE_MESSAGES = 15


async def fetch_delay(kafka: KafkaSettings, fetch_max_wait_ms: int) -> dict[str, float]:
    """Produce messages at random moments to an idle partition; time until a consumer has them."""
    topic = kafka.topic("bench-fetch-probe")
    await ensure_topics(dataclasses.replace(kafka, topic_partitions=1), [topic])
    tag = uuid.uuid4().hex.encode()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all", linger_ms=1)
    await consumer.start()
    await producer.start()
    delays: list[float] = []
    try:
        consumer.assign([TopicPartition(topic, 0)])

        async def consume() -> None:
            while len(delays) < PROBE_MESSAGES:
                batches = await consumer.getmany(timeout_ms=1000)
                now = time.perf_counter()
                for records in batches.values():
                    for r in records:
                        if r.key == tag and r.value is not None:
                            delays.append(now - float(r.value.decode()))

        reader = asyncio.create_task(consume())
        await asyncio.sleep(0.5)  # the consumer is now waiting on the partition
        gaps = random.Random(7)
        for _ in range(PROBE_MESSAGES):
            await asyncio.sleep(gaps.uniform(0.02, 0.15))
            await producer.send_and_wait(topic, str(time.perf_counter()).encode(), key=tag)
        await asyncio.wait_for(reader, 10)
    finally:
        await producer.stop()
        await consumer.stop()
    return {"p50": ms(percentile(delays, 50)), "max": ms(max(delays))}
