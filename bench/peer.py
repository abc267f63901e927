"""The peer library: `eventsourcing`'s PostgreSQL application recorder (pyeventsourcing), the
event store most Python projects would reach for, appending the same number of bytes per
event with the same writers to the same PostgreSQL server in the same run.

Its recorder serialises writers with `LOCK TABLE … IN EXCLUSIVE MODE` for a gap-free
notification order, keeps per-aggregate optimistic concurrency by primary key, and does not
chain, sign, encrypt or feed an outbox: ours does all four, so a ratio ≥ 1.0 says the
extra guarantees cost nothing against the usual choice.

`eventsourcing` and `psycopg` are bench-only dependencies (requirements-bench.in, installed by
`make bench`); without them this part reports nothing instead of failing the run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from sqlalchemy import make_url

from bench.stats import CpuMeter
from bench.throughput import run_cell

SCHEMA = "bench_eventsourcing"


@dataclass(frozen=True)
class PeerResult:
    library: str  # name and version
    per_txn: int
    writers: int
    events_per_s: float
    events: int
    state_bytes: int
    cpu_share: float
    machine_cpu: float


def _recorder(admin_url: str, writers: int) -> tuple[Any, str]:
    # bench-only: imported here so the rest of the bench runs without it
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    url = make_url(admin_url)
    datastore = PostgresDatastore(
        dbname=url.database or "",
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "",
        password=url.password or "",
        pool_size=writers,
        schema=SCHEMA,
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
    with datastore.transaction(commit=True) as curs:
        curs.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    recorder.create_table()
    return recorder, f"eventsourcing {version('eventsourcing')}"


async def measure_peer(
    admin_url: str,
    *,
    state_bytes: int,
    writers: int,
    warmup_s: float,
    window_s: float,
    progress: Callable[[str], None],
) -> PeerResult | None:
    """Events/s of the peer's recorder, 1 event per transaction, `writers` threads (its API is
    blocking; psycopg releases the GIL while it waits on the server, as asyncpg's loop does)."""
    try:
        from eventsourcing.persistence import StoredEvent
    except ImportError:
        progress("eventsourcing is not installed (make bench installs it): peer skipped")
        return None
    recorder, library = await asyncio.to_thread(_recorder, admin_url, writers)
    state = bytes(range(256)) * (state_bytes // 256) + bytes(state_bytes % 256)
    aggregates = [uuid.uuid4() for _ in range(writers)]
    pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="peer")
    loop = asyncio.get_running_loop()

    def insert(writer: int, n: int) -> int:
        event = StoredEvent(
            originator_id=aggregates[writer],
            originator_version=n + 1,
            topic="bench:NoteRecorded",
            state=state,
        )
        recorder.insert_events([event])
        return 1

    async def txn(writer: int, i: int) -> int:
        return await loop.run_in_executor(pool, insert, writer, i)

    meter = CpuMeter()
    try:
        rate, events, _ = await run_cell(writers, warmup_s, window_s, txn)
    finally:
        pool.shutdown(wait=True)
        await asyncio.to_thread(recorder.datastore.close)
    process, machine = meter.stop()
    progress(f"{library:<26}   1/txn {writers:>2} writers: {rate:>9,.0f} events/s")
    return PeerResult(library, 1, writers, rate, events, state_bytes, process, machine)
