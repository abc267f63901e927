"""Commit-to-projection latency through the outbox relay, the broker and a projection runner.

Identity's in-process runtime appends one event per transaction at a steady rate (open
loop: each append starts at its scheduled time, whatever earlier ones are doing). Its
OutboxRelay publishes identity's log to the broker, as an asyncio task of this process, and
a ProjectionRunner applies the topic to consent's real KnownSubjects read model in
consent's database, in a process of its own (`bench.projector`), as consent's runner is in
production. Every event names a new subject, so each one inserts one
`known_subjects` row.

Both ends are taken on this process's monotonic clock:
- committed: when the append's transaction commit returned to the writer (before it
  waits for the sequencer to place it in the log; the append column is commit and
  sequencing, what a service's caller waits for);
- visible: when a LISTEN connection received the notification that an AFTER INSERT trigger
  (added for the run) queues on `known_subjects`. PostgreSQL delivers a notification only
  when the inserting transaction commits, so its arrival marks the moment the projected
  row became visible to other sessions (plus one local round of delivery).
A plain consumer (no group) of identity's topic also notes when each event reached a
consumer: the relay-and-broker share of the latency. It asks the broker to answer a fetch
within 5 ms: Tansu does not answer a waiting fetch as soon as data arrives, and how late
it answers grows with the fetch's maximum wait (aiokafka's default 500 ms, which the
ProjectionRunner's consumer keeps), so with the default this figure would mostly show the
broker's fetch timing, not the relay.

Steps run at each rate in turn on the same pipeline, each drained before the next. A step
the process cannot keep up with shows as a projected rate below the target and a latency
that grows through the step (compare the first and the last fifth of its events).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.projector import RunnerCounts, cpu_seconds
from bench.stats import CpuMeter, ms, percentile
from bench.workloads import encrypted_event, kafka_settings
from expensura_events.runtime import ServiceRuntime
from expensura_ops.testing.stack import LocalStack

CHANNEL = "bench_projected"
# A step kept up if every event was projected, rows became visible at KEPT_UP_SHARE of the
# target rate at least, and the p50 of its last fifth of events stayed below GROWTH_FACTOR
# times that of its first fifth plus GROWTH_SLACK_MS (else a backlog was growing).
KEPT_UP_SHARE = 0.95
GROWTH_FACTOR = 2
GROWTH_SLACK_MS = 50
TRIGGER_SQL = (
    f"""
    CREATE FUNCTION bench_notify_projected() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('{CHANNEL}', NEW.subject_id);
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER bench_projected AFTER INSERT ON known_subjects
       FOR EACH ROW EXECUTE FUNCTION bench_notify_projected()""",
)
DROP_SQL = (
    "DROP TRIGGER IF EXISTS bench_projected ON known_subjects",
    "DROP FUNCTION IF EXISTS bench_notify_projected()",
)


@dataclass(frozen=True)
class LatencyResult:
    target_rate: float
    achieved_rate: float  # appends committed per second
    projected_rate: float  # rows made visible per second (the runner's pace)
    duration_s: float
    events: int
    projected: int
    visible_ms: dict[str, float]  # commit -> projected row visible
    delivered_ms: dict[str, float]  # commit -> fetched by a consumer polling every 5 ms
    append_ms: dict[str, float]  # the append transaction itself (begin .. commit returned)
    first_fifth_p50_ms: float  # visible latency, events of the first fifth of the run
    last_fifth_p50_ms: float  # ... of the last fifth: much larger means a growing backlog
    cpu_share: float  # this process's CPU time over wall time (1.0 = one core): writer, relay
    runner_cpu: float  # the runner's process's, likewise
    machine_cpu: float  # the whole machine's, in cores

    @property
    def sustained(self) -> bool:
        return (
            self.projected == self.events
            and self.projected_rate >= KEPT_UP_SHARE * self.target_rate
            and self.last_fifth_p50_ms < GROWTH_FACTOR * self.first_fifth_p50_ms + GROWTH_SLACK_MS
        )


@dataclass(frozen=True)
class LatencyRun:
    steps: list[LatencyResult]
    join_s: float  # from starting the runner to the first projected event
    relay_published: int
    runner_applied: int
    runner_errors: int
    relay_errors: int


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": ms(percentile(values, 50)),
        "p90": ms(percentile(values, 90)),
        "p99": ms(percentile(values, 99)),
        "max": ms(max(values)) if values else float("nan"),
    }


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin_exec(stack: LocalStack, statements: tuple[str, ...]) -> None:
    owner = create_async_engine(stack.database_url("consent", admin=True))
    try:
        async with owner.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await owner.dispose()


class _Clock:
    """When each subject's event was committed, delivered and made visible."""

    def __init__(self) -> None:
        self.committed: dict[str, float] = {}
        self.append_s: dict[str, float] = {}
        self.delivered: dict[str, float] = {}
        self.visible: dict[str, float] = {}
        self.changed = asyncio.Event()

    def on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.visible.setdefault(payload, time.perf_counter())
        self.changed.set()


async def _watch_topic(bootstrap: str, topic: str, clock: _Clock, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        fetch_max_wait_ms=5,  # see the module docstring
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and not stop.is_set():
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.05)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions or ())])
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    if record.key is not None:
                        clock.delivered.setdefault(record.key.decode(), now)
    finally:
        await consumer.stop()


async def measure_latency(
    stack: LocalStack,
    identity: ServiceRuntime,
    consent: ServiceRuntime,
    *,
    rates: tuple[float, ...],
    warmup_s: float,
    duration_s: float,
    progress: Callable[[str], None],
) -> LatencyRun:
    clock = _Clock()
    await _admin_exec(stack, TRIGGER_SQL)
    listener = await asyncpg.connect(_plain_dsn(stack.database_url("consent", admin=True)))
    await listener.add_listener(CHANNEL, clock.on_notify)
    kafka = kafka_settings(consent)
    runner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.projector",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | stack.env["consent"],
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(identity.relay.run(stop), name="relay"),
        asyncio.create_task(
            _watch_topic(kafka.bootstrap_servers, kafka.topic("identity"), clock, stop),
            name="topic-watch",
        ),
    ]
    started = time.perf_counter()

    async def append_one() -> str:
        subject = str(uuid.uuid4())
        event = encrypted_event(subject, f"notes-{subject}")
        began = time.perf_counter()
        # The commit, timed where it returns: the service's engine would then wait for the
        # sequencer before the block ends (`LogEngine.begin`), which is done here right
        # after, so that a writer whose turn comes late cannot see its event projected
        # "before" its commit.
        async with AsyncEngine.begin(identity.engine) as conn:
            await identity.append(conn, [event])
        clock.committed[subject] = time.perf_counter()
        await identity.engine.sequencer.flush()
        clock.append_s[subject] = time.perf_counter() - began  # acknowledged: in the log
        return subject

    async def paced(rate: float, seconds: float, until_seen: bool = False) -> list[str]:
        """Append at `rate` for `seconds` (longer, if `until_seen`, until one is projected)."""
        pending: list[asyncio.Task[str]] = []
        t0 = time.perf_counter()
        i = 0
        while True:
            now = time.perf_counter()
            if now - t0 >= seconds and not (until_seen and not clock.visible):
                break
            if until_seen and now - started > 60:  # the warm-up's wait, not a slow step
                raise TimeoutError("no event was projected within 60 s (consumer group join?)")
            target = t0 + i / rate
            if target > now:
                await asyncio.sleep(target - now)
            pending.append(asyncio.create_task(append_one()))
            i += 1
        return list(await asyncio.gather(*pending))

    async def drained(subjects: list[str], timeout: float = 60.0) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and not all(s in clock.visible for s in subjects):
            clock.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(clock.changed.wait(), 1.0)
        await asyncio.sleep(0.3)  # let the topic watcher catch up with the last batch

    steps = []
    try:
        progress(f"warming up (consumer group join, then {warmup_s:.0f} s at {rates[0]:.0f}/s)")
        warm = await paced(rates[0], 0.0, until_seen=True)
        join_s = min(clock.visible.values()) - started
        warm += await paced(rates[0], warmup_s)
        await drained(warm)
        for rate in rates:
            progress(f"measuring: {rate:.0f} events/s for {duration_s:.0f} s")
            meter, runner_cpu = CpuMeter(), cpu_seconds(runner.pid)
            measured = await paced(rate, duration_s)
            await drained(measured)
            process, machine = meter.stop()
            runner_cpu = (cpu_seconds(runner.pid) - runner_cpu) / meter.wall_s
            steps.append(_step(clock, measured, rate, duration_s, (process, runner_cpu, machine)))
    finally:
        counts = await _stopped(runner)
        stop.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, 15)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        await listener.close()
        await _admin_exec(stack, DROP_SQL)
    return LatencyRun(
        steps,
        join_s,
        identity.relay.stats.published,
        counts.applied,
        counts.errors,
        identity.relay.stats.errors,
    )


async def _stopped(runner: asyncio.subprocess.Process) -> RunnerCounts:
    """Stop the runner's process (its stdin closed) and read its counts."""
    assert runner.stdin is not None and runner.stdout is not None
    runner.stdin.close()
    try:
        out, _ = await asyncio.wait_for(runner.communicate(), 30)
        line = out.decode().strip().splitlines()[-1] if out.strip() else "{}"
        found = json.loads(line)
        return RunnerCounts(int(found.get("applied", 0)), int(found.get("errors", 1)))
    except (TimeoutError, ValueError):
        runner.kill()
        await runner.wait()
        return RunnerCounts(0, 1)


def _step(
    clock: _Clock,
    measured: list[str],
    rate: float,
    duration_s: float,
    cpu: tuple[float, float, float],
) -> LatencyResult:
    commits = [clock.committed[s] for s in measured]
    seen = [s for s in measured if s in clock.visible]
    visible = [clock.visible[s] - clock.committed[s] for s in seen]
    delivered = [clock.delivered[s] - clock.committed[s] for s in measured if s in clock.delivered]
    span = max(commits) - min(commits)
    shown = [clock.visible[s] for s in seen]
    shown_span = max(shown) - min(shown) if shown else 0.0
    fifth = max(1, len(measured) // 5)
    first = [clock.visible[s] - clock.committed[s] for s in measured[:fifth] if s in clock.visible]
    last = [clock.visible[s] - clock.committed[s] for s in measured[-fifth:] if s in clock.visible]
    return LatencyResult(
        target_rate=rate,
        achieved_rate=(len(commits) - 1) / span if span > 0 else float("nan"),
        projected_rate=(len(shown) - 1) / shown_span if shown_span > 0 else float("nan"),
        duration_s=duration_s,
        events=len(measured),
        projected=len(visible),
        visible_ms=_summary(visible),
        delivered_ms=_summary(delivered),
        append_ms=_summary([clock.append_s[s] for s in measured]),
        first_fifth_p50_ms=ms(percentile(first, 50)),
        last_fifth_p50_ms=ms(percentile(last, 50)),
        cpu_share=cpu[0],
        runner_cpu=cpu[1],
        machine_cpu=cpu[2],
    )
