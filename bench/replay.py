"""Reading the whole log back: a projection rebuild and `log verify`.

The corpus is identity's log topped up to N events (the latency run's events, one subject
each, plus batches of 100 notes over 10 subjects of 10 events each), all with one encrypted
field. The rebuild is `expensura_events.projections.rebuild` of consent's KnownSubjects from
a LocalLogFeed over identity's database; the verification is
`expensura_events.store.verify_log`, what `expensura log verify` runs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from bench.workloads import encrypted_event
from expensura_consent.subjects.projection import KnownSubjects
from expensura_events.projections import LocalLogFeed, rebuild
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import EventStore, verify_log
from expensura_events.tables import event_log

FILL_BATCH = 100
FILL_SUBJECTS_PER_BATCH = 10
FILL_WRITERS = 4
VERIFY_RUNS = 3  # it is quick: report the median of a few


@dataclass(frozen=True)
class Timed:
    events: int
    seconds: float
    ok: bool = True

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True)
class ReplayResult:
    corpus: int
    subjects: int
    fill: Timed
    rebuild: Timed
    verify: Timed


async def _log_size(rt: ServiceRuntime) -> int:
    async with rt.engine.connect() as conn:
        seq, _ = await EventStore.head(conn)
    return seq


async def fill_corpus(rt: ServiceRuntime, target: int) -> Timed:
    """Append batches until the log holds `target` events (or more, if it already did)."""
    remaining = target - await _log_size(rt)
    added = 0
    started = time.perf_counter()

    async def writer() -> None:
        nonlocal remaining, added
        while remaining > 0:
            n = min(FILL_BATCH, remaining)
            remaining -= n
            subjects = [str(uuid.uuid4()) for _ in range(FILL_SUBJECTS_PER_BATCH)]
            per_subject = -(-n // len(subjects))
            events = [
                encrypted_event(s, f"notes-{s}", k) for s in subjects for k in range(per_subject)
            ][:n]
            async with rt.engine.begin() as conn:
                await rt.store.append(conn, events)
            added += n

    await asyncio.gather(*(writer() for _ in range(FILL_WRITERS)))
    return Timed(added, time.perf_counter() - started)


async def measure_replay(
    identity: ServiceRuntime,
    consent: ServiceRuntime,
    corpus: int,
    progress: Callable[[str], None],
) -> ReplayResult:
    progress(f"filling identity's log to {corpus:,} events")
    fill = await fill_corpus(identity, corpus)
    size = await _log_size(identity)
    async with identity.engine.connect() as conn:
        subjects = int(
            (
                await conn.execute(select(func.count(func.distinct(event_log.c.subject_id))))
            ).scalar_one()
        )

    progress(f"rebuilding KnownSubjects over {size:,} events")
    started = time.perf_counter()
    applied = (
        await rebuild(
            consent.engine,
            consent.mapper,
            KnownSubjects(),
            [LocalLogFeed(identity.engine, "identity")],
        )
    ).applied
    rebuilt = Timed(applied, time.perf_counter() - started, ok=applied == size)

    progress(f"verifying the hash chain over {size:,} events ({VERIFY_RUNS} times)")
    runs = []
    for _ in range(VERIFY_RUNS):
        started = time.perf_counter()
        async with identity.engine.connect() as conn:
            verification = await verify_log(conn)
        runs.append(
            Timed(
                verification.checked,
                time.perf_counter() - started,
                ok=verification.ok and verification.checked == size,
            )
        )
    verified = sorted(runs, key=lambda t: t.seconds)[len(runs) // 2]  # the median run
    return ReplayResult(size, subjects, fill, rebuilt, verified)
