"""Reading the whole log back: a projection rebuild and `log verify`.

The corpus is identity's log topped up to N events (the latency run's events, one subject
each, then notes of 10 events per subject), all with one encrypted field. Rates are only
meaningful over a log that takes seconds to read, so the top-up is written by COPY
(`fill_by_copy`): genuine records built as `EventStore.append` builds them (the note sealed
with the subject's key, the canonical record, the chain, identity's signature), without a
transaction per batch. The rebuild is `expensura_events.projections.rebuild` of consent's
KnownSubjects from a LocalLogFeed over identity's database; the verification is
`expensura_events.store.verify_log`, what `expensura log verify` runs: once with its default
of a worker process per core and once in one process.

    python -m bench.replay [--events N]   (this part alone; DATABASE_URL or embedded servers)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bench.workloads import NOTE_TEXT, encrypted_event
from expensura_consent.subjects.projection import KnownSubjects
from expensura_events.chain import link_hash
from expensura_events.chain_segments import LINKS_BETWEEN
from expensura_events.envelope import new_event_id
from expensura_events.mapper import canonical_json
from expensura_events.projections import LocalLogFeed, rebuild
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import NO_END, EventStore, verify_log
from expensura_events.tables import event_log

EVENTS_PER_SUBJECT = 10
COPY_CHUNK = 20_000
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
    verify: Timed  # `log verify` as it runs by default (worker processes over a large log)
    verify_serial: Timed  # the same in one process
    read_floor: Timed  # the floor: every link's columns read through the driver, nothing done

    @property
    def rebuild_events_per_s(self) -> float:
        return self.rebuild.events_per_s

    @property
    def verify_events_per_s(self) -> float:
        return self.verify.events_per_s


async def _log_size(rt: ServiceRuntime) -> int:
    async with rt.engine.connect() as conn:
        seq, _ = await EventStore.head(conn)
    return seq


async def fill_by_copy(rt: ServiceRuntime, target: int) -> Timed:
    """Top the log up to `target` events by COPY, each record as an append would write it."""
    async with rt.engine.connect() as conn:
        seq, prev = await EventStore.head(conn)
    if seq >= target:
        return Timed(0, 1e-9)
    started = time.perf_counter()
    signer, cipher = rt.store.signer, rt.mapper.cipher
    assert signer is not None
    # The envelope's fields as `to_record` writes them, from one genuine event.
    sample = encrypted_event(str(uuid.uuid4()), "notes-sample")
    template: dict[str, Any] = json.loads(
        rt.mapper.to_record(sample, await rt.mapper.seal_payload(sample))
    )
    recorded_at = datetime.fromisoformat(template["occurred_at"])
    template["recorded_at"] = template["occurred_at"]
    columns = [c.name for c in event_log.columns]
    added = 0
    async with rt.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        while seq < target:
            n = min(COPY_CHUNK, target - seq)
            subjects = [str(uuid.uuid4()) for _ in range(-(-n // EVENTS_PER_SUBJECT))]
            keys = await cipher.keys.get_or_create_many(set(subjects))
            rows = []
            for i in range(n):
                subject, k = subjects[i // EVENTS_PER_SUBJECT], i % EVENTS_PER_SUBJECT
                seq += 1
                event_id = str(new_event_id())
                sealed = await cipher.encrypt_fields(subject, event_id, {"note": NOTE_TEXT}, keys)
                record = canonical_json(
                    template
                    | {
                        "event_id": event_id,
                        "correlation_id": str(new_event_id()),
                        "stream_id": f"notes-{subject}",
                        "stream_version": k + 1,
                        "subject_id": subject,
                        "payload": {"counter": k, **sealed},
                    }
                )
                prev = link_hash(prev, seq, record)
                signed = signer.sign(record)
                rows.append(
                    (
                        seq, uuid.UUID(event_id), f"notes-{subject}", k + 1,
                        template["event_type"], subject, recorded_at, record, prev,
                        signed.signature, signed.key_id,
                    )
                )  # fmt: skip
            await raw.copy_records_to_table("event_log", records=rows, columns=columns)
            added += n
    async with rt.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE event_log")
    return Timed(added, time.perf_counter() - started)


async def measure_replay(
    identity: ServiceRuntime,
    consent: ServiceRuntime,
    corpus: int,
    progress: Callable[[str], None],
) -> ReplayResult:
    progress(f"filling identity's log to {corpus:,} events")
    fill = await fill_by_copy(identity, corpus)
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

    progress(f"verifying the hash chain over {size:,} events ({VERIFY_RUNS} times each way)")
    verified = await _verify(identity, size, None)
    serial = await _verify(identity, size, 1)
    floor = await _read_floor(identity, size)
    return ReplayResult(size, subjects, fill, rebuilt, verified, serial, floor)


async def _read_floor(rt: ServiceRuntime, size: int) -> Timed:
    """The median of a few plain reads of what the verifier reads (`LINKS_BETWEEN`, pages
    of 20,000), in one process: what reading the log costs before anything is checked."""
    runs = []
    for _ in range(VERIFY_RUNS):
        started, seq, read = time.perf_counter(), 0, 0
        async with rt.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            while page := await raw.fetch(LINKS_BETWEEN, seq, NO_END, 20_000):
                seq, read = page[-1][0], read + len(page)
        runs.append(Timed(read, time.perf_counter() - started, ok=read == size))
    return sorted(runs, key=lambda t: t.seconds)[len(runs) // 2]


async def _verify(rt: ServiceRuntime, size: int, workers: int | None) -> Timed:
    """The median of a few runs of `verify_log` (`workers`: its default when None)."""
    runs = []
    for _ in range(VERIFY_RUNS):
        started = time.perf_counter()
        async with rt.engine.connect() as conn:
            verification = await verify_log(conn, workers=workers)
        runs.append(
            Timed(
                verification.checked,
                time.perf_counter() - started,
                ok=verification.ok and verification.checked == size,
            )
        )
    return sorted(runs, key=lambda t: t.seconds)[len(runs) // 2]


def main(argv: list[str] | None = None) -> int:
    """This part alone, on its own namespace of databases (and a broker, which it leaves
    idle: provisioning makes the topics)."""
    from bench.cli import _quiet_logs
    from bench.infra import infrastructure
    from bench.workloads import runtime
    from expensura_ops.testing.stack import LocalStack

    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args(argv)
    _quiet_logs()

    async def run(admin_url: str, bootstrap: str, workdir: Any) -> ReplayResult:
        stack = LocalStack(admin_url, bootstrap, workdir / "stack", templates=None)
        await stack.provision()
        try:
            identity, consent = runtime(stack, "identity"), runtime(stack, "consent")
            try:
                return await measure_replay(identity, consent, args.events, print)
            finally:
                await identity.close()
                await consent.close()
        finally:
            await stack.drop()

    with infrastructure() as infra:
        r = asyncio.run(run(infra.admin_url, infra.bootstrap_servers, infra.workdir))
    print(f"fill by COPY: {r.fill.events:,} events in {r.fill.seconds:.1f} s")
    for what, t in (
        ("rebuild", r.rebuild),
        ("verify", r.verify),
        ("verify, one process", r.verify_serial),
        ("floor: reading the links, one process", r.read_floor),
    ):
        print(
            f"{what}: {t.events:,} events in {t.seconds:.2f} s = {t.events_per_s:,.0f}/s ok={t.ok}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
