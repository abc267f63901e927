"""Kafka plumbing, limited to what both Apache Kafka and the local Tansu broker support.

No idempotent or transactional producers (Tansu refuses them): exactly-once comes from the
outbox and the consumers' inbox instead. Topics are created explicitly with a fixed number
of partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from expensura_events.topology import TOPIC_PARTITIONS, events_topic

SECURITY_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
SASL_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    metadata_max_age_ms: int = 5_000
    request_timeout_ms: int = 10_000
    # How long a fetch waits for data. Tansu answers a waiting fetch only when the wait
    # expires (Kafka answers as soon as data arrives), so on Tansu it is every hop's latency,
    # and its inverse the rate at which every idle consumer polls: at 50 ms an idle local
    # stack kept 0.8 of a core busy, at 100 ms 0.37 (most of it the broker's). So the wait
    # follows the traffic (`FetchPace`): `fetch_max_wait_ms` while events flow, and
    # `fetch_idle_wait_ms` once none came for `fetch_idle_after_s`.
    fetch_max_wait_ms: int = 10
    fetch_idle_wait_ms: int = 1_000
    fetch_idle_after_s: float = 2.0
    topic_namespace: str = ""
    # Partitions of a topic this service creates (provisioning, or the relay after a broker
    # lost its topics): fixed at creation, so every process of a stack must agree.
    topic_partitions: int = TOPIC_PARTITIONS
    # Broker security for real clusters (deploy/: SASL_SSL with SCRAM-SHA-512, each service
    # its own user and ACLs); the local broker speaks PLAINTEXT.
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"security_protocol must be one of {sorted(SECURITY_PROTOCOLS)}")
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ValueError(f"sasl_mechanism must be one of {sorted(SASL_MECHANISMS)}")
            if not (self.sasl_username and self.sasl_password):
                raise ValueError("SASL needs a user name and a password")

    def connection(self) -> dict[str, Any]:
        """The client options every producer, consumer and admin client connects with."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        if self.security_protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        return options

    def topic(self, service: str) -> str:
        return events_topic(service, self.topic_namespace)

    def group(self, name: str) -> str:
        return self.topic_namespace + name


def new_producer(cfg: KafkaSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **cfg.connection(),
        acks="all",
        linger_ms=1,
        request_timeout_ms=cfg.request_timeout_ms,
        metadata_max_age_ms=cfg.metadata_max_age_ms,
        max_request_size=1_048_576,
    )


class FetchPace:
    """A consumer's fetch wait, following the traffic: short while events flow (every hop's
    latency on a broker that answers a fetch only when its wait ends), long once none came
    for `idle_after_s` (the rate at which an idle consumer polls, and so the idle CPU of the
    service and the broker). The first event after a quiet spell waits for at most one
    long wait; every event of a stream that keeps flowing, for a short one.

    aiokafka reads the wait from its fetcher for every fetch request it builds; there is no
    public setter, so `apply` sets that attribute (aiokafka is pinned in the lock file, and
    `test_kafka_fetch_pace` fails if an upgrade renames it)."""

    def __init__(self, busy_ms: int, idle_ms: int, idle_after_s: float, now: float) -> None:
        self.busy_ms, self.idle_ms, self.idle_after_s = busy_ms, max(idle_ms, busy_ms), idle_after_s
        self.last_records = now
        self.wait_ms = busy_ms  # a consumer starts busy: it may have a backlog to catch up

    def observe(self, got_records: bool, now: float) -> int | None:
        """The new wait if it should change after a poll that did (not) return records."""
        if got_records:
            self.last_records = now
            wanted = self.busy_ms
        elif now - self.last_records >= self.idle_after_s:
            wanted = self.idle_ms
        else:
            wanted = self.wait_ms
        if wanted == self.wait_ms:
            return None
        self.wait_ms = wanted
        return wanted

    @staticmethod
    def apply(consumer: AIOKafkaConsumer, wait_ms: int) -> None:
        consumer._fetcher._fetch_max_wait_ms = wait_ms


def new_consumer(cfg: KafkaSettings, topics: list[str], group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        **cfg.connection(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=cfg.session_timeout_ms,
        heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        metadata_max_age_ms=cfg.metadata_max_age_ms,
        request_timeout_ms=cfg.request_timeout_ms,
        max_poll_records=500,
        fetch_max_wait_ms=cfg.fetch_max_wait_ms,
        # The background fetcher wakes when a fetch returns, the application consumes, or the
        # assignment changes; this timeout is only its safety net. At aiokafka's 200 ms an
        # idle consumer woke five times a second for nothing (an event-loop profile: a
        # tenth of an idle service's CPU); one long fetch wait is enough.
        consumer_timeout_ms=max(cfg.fetch_idle_wait_ms, 200),
    )


async def existing_topics(cfg: KafkaSettings) -> set[str]:
    admin = AIOKafkaAdminClient(**cfg.connection(), request_timeout_ms=cfg.request_timeout_ms)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def end_offsets(cfg: KafkaSettings, topic: str) -> dict[int, int] | None:
    """Each partition's end offset (0: the partition holds nothing), or None if the topic
    does not exist. Tansu under-reports end offsets of partitions written in batches, but
    never reports 0 for a partition that holds records: compare only against 0."""
    consumer = AIOKafkaConsumer(
        **cfg.connection(),
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=cfg.request_timeout_ms,
    )
    try:
        await consumer.start()
        if topic not in await consumer.topics():
            return None
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def ensure_topics(cfg: KafkaSettings, topics: list[str]) -> list[str]:
    """Create the topics that do not exist; return the ones created."""
    admin = AIOKafkaAdminClient(**cfg.connection(), request_timeout_ms=cfg.request_timeout_ms)
    await admin.start()
    try:
        missing = [t for t in topics if t not in set(await admin.list_topics())]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(
                    [
                        NewTopic(t, num_partitions=cfg.topic_partitions, replication_factor=1)
                        for t in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


async def broker_reachable(cfg: KafkaSettings, timeout: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            await existing_topics(cfg)
        return True
    except Exception:
        return False
