"""The blast radius over 10 million logged accesses and disclosures (SEC-5, issue 13).

Builds incident's `exposure_index` (the table and indexes its migration makes, from
`expensura_incident.tables`) in a scratch database, fills it with synthetic rows by COPY
(not through the API: 10 M events through the log would take hours and measure the log),
then creates the indexes, VACUUM ANALYZE (the visibility map an index-only scan needs), and
times the blast radius's own query (`exposure.store.groups_query`, then the domain's fold)
for a few scopes against the floor: a plain `SELECT count(*)` over the same rows, same run.

Synthetic year: 1 M subjects, rows spread evenly over 365 days; 40 % partner disclosures
(200 partners, 3 credentials each), 30 % staff reads (1,000 staff), 20 % service reads (10
services), 10 % the subjects' own; 12 categories of 2 fields each; 10 % of values sealed.

    python -m bench.blast_radius [--rows N]   (DATABASE_URL, or an embedded server)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from expensura_events.catalog.incident_exposure import ScopeKind
from expensura_incident.exposure import store
from expensura_incident.exposure.domain import Scope, blast_radius
from expensura_incident.tables import exposure_index

ROWS = 10_000_000
SUBJECTS = 1_000_000
PARTNERS, STAFF, SERVICES = 200, 1000, 10
CATEGORIES = [f"pd:Category{c:02d}" for c in range(12)]
SOURCES = ["identity", "consent", "loans", "sharing-gateway", "incident"]
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
SECONDS = 365 * 24 * 3600
CHUNK = 50_000  # rows per COPY chunk
REPEATS = 5
TARGET_S = 2.0


@dataclass(frozen=True)
class ScopeTiming:
    name: str
    rows: int  # index rows in scope
    subjects: int
    query_s: float  # median: the store's query, rows fetched
    total_s: float  # median: query and the domain's fold


@dataclass(frozen=True)
class BlastRadiusResult:
    rows: int
    build_s: float  # COPY
    index_s: float  # CREATE INDEX x4 and VACUUM ANALYZE
    table_mb: float
    indexes_mb: float
    floor_s: float  # median `SELECT count(*)` over the table
    scopes: list[ScopeTiming]

    @property
    def worst_s(self) -> float:
        return max(s.total_s for s in self.scopes)


def _subject(i: int) -> str:
    return str(uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % (1 << 128)))


async def _lines(rows: int, seed: int = 13) -> AsyncIterator[bytes]:
    rnd = random.Random(seed)
    subjects = [_subject(i) for i in range(SUBJECTS)]
    kinds = ["partner"] * 4 + ["staff"] * 3 + ["service"] * 2 + ["user"]
    made = 0
    while made < rows:
        n = min(CHUNK, rows - made)
        out = []
        for k in range(n):
            kind = kinds[rnd.randrange(10)]
            subject = subjects[rnd.randrange(SUBJECTS)]
            credential = "\\N"
            if kind == "partner":
                p = rnd.randrange(PARTNERS)
                actor, credential = f"partner-{p:03d}", f"client-{p:03d}-{rnd.randrange(3)}"
            elif kind == "staff":
                actor = f"staff-{rnd.randrange(STAFF):04d}"
            elif kind == "service":
                actor = f"service-{rnd.randrange(SERVICES)}"
            else:
                actor = subject
            c = rnd.randrange(len(CATEGORIES))
            at = YEAR_START + timedelta(seconds=rnd.randrange(SECONDS))
            sealed = subject if rnd.random() < 0.1 else "\\N"
            event_id = uuid.UUID(int=made + k + 1)
            out.append(
                f"{at.isoformat()}\t{kind}\t{actor}\t{credential}\t{subject}\t{CATEGORIES[c]}"
                f"\tfield{c:02d}{rnd.randrange(2)}\t{sealed}\t{SOURCES[rnd.randrange(5)]}"
                f"\t{event_id}\n"
            )
        made += n
        yield "".join(out).encode()
        await asyncio.sleep(0)


def _scopes() -> list[tuple[str, Scope]]:
    week = (YEAR_START + timedelta(days=180), YEAR_START + timedelta(days=187))
    year = (YEAR_START, YEAR_START + timedelta(days=365))
    quarter = (YEAR_START + timedelta(days=90), YEAR_START + timedelta(days=180))
    return [
        ("a partner over a week", Scope(ScopeKind.PARTNER, "partner-007", *week)),
        ("a credential over a week", Scope(ScopeKind.CREDENTIAL, "client-007-1", *week)),
        ("a staff member over the year", Scope(ScopeKind.STAFF, "staff-0042", *year)),
        ("a service over a week", Scope(ScopeKind.SERVICE, "service-3", *week)),
        ("a category over a week", Scope(ScopeKind.CATEGORY, "pd:Category05", *week)),
        ("a subject over the year", Scope(ScopeKind.SUBJECT, _subject(4242), *year)),
        ("a partner over the year", Scope(ScopeKind.PARTNER, "partner-007", *year)),
        ("a category over 90 days", Scope(ScopeKind.CATEGORY, "pd:Category05", *quarter)),
    ]


async def _timed(engine: AsyncEngine, scope: Scope) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    async with engine.connect() as conn:
        groups = await store.groups(conn, scope)
    t1 = time.perf_counter()
    radius = blast_radius(scope, groups)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, len(groups), len(radius.subjects)


async def measure_blast_radius(
    admin_url: str, rows: int = ROWS, say: Callable[[str], None] = print
) -> BlastRadiusResult:
    """Build the index in a scratch database, time the scopes and the floor, drop it."""
    name = f"bench_blast_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL synchronous_commit = off"))
            await conn.run_sync(exposure_index.create)
            for index in exposure_index.indexes:  # built after the load: faster
                await conn.run_sync(index.drop)
        say(f"COPY of {rows:,} synthetic index rows into {name}")
        raw = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            t = time.perf_counter()
            await raw.copy_to_table(
                exposure_index.name,
                source=_lines(rows),
                columns=[c.name for c in exposure_index.c],
                format="text",
            )
            build_s = time.perf_counter() - t
            say(f"  {build_s:.0f} s; creating the 4 indexes, VACUUM ANALYZE")
            t = time.perf_counter()
            await raw.execute("SET maintenance_work_mem = '1GB'")
            await raw.execute("SET max_parallel_maintenance_workers = 2")
            async with engine.begin() as conn:
                await conn.execute(text("SET maintenance_work_mem = '1GB'"))
                for index in exposure_index.indexes:
                    await conn.run_sync(index.create)
            await raw.execute(f"VACUUM ANALYZE {exposure_index.name}")
            index_s = time.perf_counter() - t
            table_mb = await raw.fetchval(
                f"SELECT pg_table_size('{exposure_index.name}') / 1048576.0"
            )
            indexes_mb = await raw.fetchval(
                f"SELECT pg_indexes_size('{exposure_index.name}') / 1048576.0"
            )
            say(f"  {index_s:.0f} s; table {table_mb:.0f} MB, indexes {indexes_mb:.0f} MB")
            floors = []
            for _ in range(REPEATS):
                t = time.perf_counter()
                counted = await raw.fetchval(f"SELECT count(*) FROM {exposure_index.name}")
                floors.append(time.perf_counter() - t)
            assert counted == rows
        finally:
            await raw.close()
        floor_s = statistics.median(floors)
        say(f"  floor: SELECT count(*) over {rows:,} rows, {floor_s:.3f} s (median)")
        timings = []
        for label, scope in _scopes():
            await _timed(engine, scope)  # warm
            runs = [await _timed(engine, scope) for _ in range(REPEATS)]
            q = statistics.median(r[0] for r in runs)
            total = statistics.median(r[1] for r in runs)
            async with engine.connect() as conn:
                in_scope = (
                    await conn.execute(
                        select(func.count())
                        .select_from(exposure_index)
                        .where(store.in_scope(scope))
                    )
                ).scalar_one()
            timings.append(ScopeTiming(label, in_scope, runs[0][3], q, total))
            say(
                f"  {label}: {in_scope:,} rows, {runs[0][3]:,} subjects: query {q:.3f} s,"
                f" with the fold {total:.3f} s ({total / floor_s:.2f}x the floor)"
            )
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    return BlastRadiusResult(rows, build_s, index_s, table_mb, indexes_mb, floor_s, timings)


def report(result: BlastRadiusResult) -> str:
    lines = [
        "| scope | rows in scope | subjects | query (s) | with the fold (s) | x floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in result.scopes:
        lines.append(
            f"| {s.name} | {s.rows:,} | {s.subjects:,} | {s.query_s:.3f} | {s.total_s:.3f}"
            f" | {s.total_s / result.floor_s:.2f} |"
        )
    lines.append(
        f"| floor: `SELECT count(*)` over all {result.rows:,} rows | {result.rows:,} | |"
        f" {result.floor_s:.3f} | | 1.00 |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.blast_radius", description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args(argv)
    from bench.infra import infrastructure

    def say(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    with infrastructure() as infra:
        say(f"PostgreSQL: {infra.postgres}")
        result = asyncio.run(measure_blast_radius(infra.admin_url, args.rows, say))
    print(report(result))
    print(
        f"COPY {result.build_s:.0f} s, indexes and VACUUM {result.index_s:.0f} s;"
        f" worst scope {result.worst_s:.3f} s against the {TARGET_S:.0f} s target"
    )
    return 0 if result.worst_s <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
