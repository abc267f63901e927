"""Append throughput through EventStore.append, against a plain-INSERT baseline.

Each cell runs `writers` concurrent tasks, each looping over one transaction of `per_txn`
events, for a warm-up and then a measured window (see `run_cell`). The baseline
inserts the same stored record bytes (taken from the log) into a table with one identity
column and a bytea, in the same database, through the same engine (connection pool), with
the same number of rows per transaction and the same number of writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Identity, LargeBinary, MetaData, Table, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.stats import CpuMeter, ms, percentile
from bench.workloads import PLAIN_TYPE, encrypted_event, plain_event
from expensura_events.envelope import EventEnvelope
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import event_log
from expensura_ops.testing.stack import LocalStack

BASELINE = "baseline INSERT"
ENCRYPTED = "append, 1 personal field"
PLAIN = "append, no personal field"
WORKLOADS = (BASELINE, ENCRYPTED, PLAIN)

baseline_table = Table(
    "bench_plain_insert",
    MetaData(),
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("record", LargeBinary, nullable=False),
)

Txn = Callable[[int, int], Awaitable[int]]  # (writer, iteration) -> events committed


@dataclass(frozen=True)
class Cell:
    workload: str
    per_txn: int
    writers: int
    events_per_s: float
    events: int  # in the counted transactions
    txns: int
    txn_p50_ms: float
    txn_p99_ms: float
    lock_waiters: float  # mean sessions waiting on an advisory lock (sampled every 50 ms)
    cpu_share: float  # this (client) process's CPU time over wall time, 1.0 = one core
    machine_cpu: float  # the whole machine's, in cores


@dataclass(frozen=True)
class ThroughputResult:
    cells: list[Cell]
    record_bytes: dict[str, float]  # mean stored record size per workload

    def cell(self, workload: str, per_txn: int, writers: int) -> Cell:
        for c in self.cells:
            if (c.workload, c.per_txn, c.writers) == (workload, per_txn, writers):
                return c
        raise KeyError((workload, per_txn, writers))

    def ratio(self, workload: str, per_txn: int, writers: int) -> float:
        base = self.cell(BASELINE, per_txn, writers).events_per_s
        return self.cell(workload, per_txn, writers).events_per_s / base


async def run_cell(
    writers: int, warmup_s: float, window_s: float, txn: Txn
) -> tuple[float, int, list[float]]:
    """Run `txn` back to back in `writers` concurrent loops.

    A transaction counts if it began inside the window (after the warm-up); a writer whose
    warm-up transaction outlasted the window runs one more, counted. Each writer's rate is
    its counted events over the time its counted transactions took (the loops never pause,
    so that is the time it spent); the cell's rate is their sum. Returns (events/s, counted
    events, durations of counted transactions).
    """
    start = time.perf_counter()
    t0, t1 = start + warmup_s, start + warmup_s + window_s
    rates: list[float] = []
    counted = 0
    durations: list[float] = []

    async def writer(w: int) -> None:
        nonlocal counted
        i, events, busy = 0, 0, 0.0
        while True:
            began = time.perf_counter()
            if began >= t1 and events > 0:
                break
            n = await txn(w, i)
            i += 1
            if began >= t0:
                took = time.perf_counter() - began
                events, busy = events + n, busy + took
                durations.append(took)
        rates.append(events / busy)
        counted += events

    await asyncio.gather(*(writer(w) for w in range(writers)))
    return sum(rates), counted, durations


LOCK_WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock'"
)


async def sample_lock_waiters(engine: AsyncEngine, stop: asyncio.Event) -> list[int]:
    """How many sessions wait on a lock, every 50 ms: the log's (sequencers) or a stream's
    row (writers of one stream; each bench writer has its own)."""
    samples: list[int] = []
    async with engine.connect() as conn:
        while not stop.is_set():
            samples.append(int((await conn.execute(LOCK_WAITERS)).scalar_one()))
            await conn.commit()  # statistics views are a snapshot per transaction
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
    return samples


async def create_baseline_table(stack: LocalStack, role: str) -> None:
    owner = create_async_engine(stack.database_url("identity", admin=True))
    try:
        async with owner.begin() as conn:
            await conn.execute(
                text(
                    "CREATE TABLE bench_plain_insert ("
                    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                    " record bytea NOT NULL)"
                )
            )
            await conn.execute(text(f'GRANT SELECT, INSERT ON bench_plain_insert TO "{role}"'))
    finally:
        await owner.dispose()


async def measure_throughput(
    stack: LocalStack,
    rt: ServiceRuntime,
    *,
    batch: int,
    writer_counts: tuple[int, ...],
    warmup_s: float,
    window_s: float,
    progress: Callable[[str], None],
) -> ThroughputResult:
    await create_baseline_table(stack, rt.definition.spec.db_role)
    async with rt.engine.connect() as conn:
        pool = list(
            (
                await conn.execute(
                    select(event_log.c.record)
                    .where(event_log.c.event_type == "testing.NoteRecorded")
                    .order_by(event_log.c.seq.desc())
                    .limit(1024)
                )
            ).scalars()
        )
    if not pool:
        raise RuntimeError("the log holds no note records to use as baseline rows")

    def baseline_txn(per_txn: int) -> Txn:
        async def txn(w: int, i: int) -> int:
            first = (w * 7919 + i * per_txn) % len(pool)
            rows = [{"record": pool[(first + k) % len(pool)]} for k in range(per_txn)]
            async with rt.engine.begin() as conn:
                await conn.execute(baseline_table.insert(), rows)
            return per_txn

        return txn

    def append_txn(per_txn: int, make: Callable[[str, str, int], EventEnvelope]) -> Txn:
        subjects: dict[int, str] = {}

        async def txn(w: int, i: int) -> int:
            subject = subjects.setdefault(w, str(uuid.uuid4()))
            events = [make(subject, f"bench-{subject}", i * per_txn + k) for k in range(per_txn)]
            async with rt.engine.begin() as conn:
                await rt.store.append(conn, events)
            return per_txn

        return txn

    async def measure(workload: str, per_txn: int, writers: int) -> Cell:
        if workload == BASELINE:
            txn = baseline_txn(per_txn)
        else:
            txn = append_txn(per_txn, encrypted_event if workload == ENCRYPTED else plain_event)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_lock_waiters(observer, stop))
        meter = CpuMeter()
        try:
            rate, events, durations = await run_cell(writers, warmup_s, window_s, txn)
        finally:
            stop.set()
            waiters = await sampler
        return Cell(
            workload,
            per_txn,
            writers,
            rate,
            events,
            len(durations),
            ms(percentile(durations, 50)),
            ms(percentile(durations, 99)),
            sum(waiters) / max(1, len(waiters)),
            *meter.stop(),
        )

    cells: list[Cell] = []
    observer = create_async_engine(stack.database_url("identity", admin=True))
    try:
        for per_txn in (1, batch):
            for writers in writer_counts:
                for workload in WORKLOADS:
                    cell = await measure(workload, per_txn, writers)
                    cells.append(cell)
                    progress(
                        f"{workload:<26} {per_txn:>3}/txn {writers:>2} writers: "
                        f"{cell.events_per_s:>9,.0f} events/s"
                    )
    finally:
        await observer.dispose()

    sizes = {BASELINE: sum(len(r) for r in pool) / len(pool)}
    async with rt.engine.connect() as conn:
        for workload, event_type in ((ENCRYPTED, "testing.NoteRecorded"), (PLAIN, PLAIN_TYPE)):
            mean = (
                await conn.execute(
                    text("SELECT avg(length(record)) FROM event_log WHERE event_type = :t"),
                    {"t": event_type},
                )
            ).scalar_one()
            sizes[workload] = float(mean or 0.0)
    return ThroughputResult(cells, sizes)
