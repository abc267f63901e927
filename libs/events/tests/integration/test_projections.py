"""Projections against real PostgreSQL and the real broker: exactly-once effect, order, rebuild.

(The rebuild of another service's read model over HTTP, through the CLI, is in e2e/.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Column, Integer, MetaData, Table, Text, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from expensura_consent.app import service_definition as consent
from expensura_consent.subjects.projection import KnownSubjects, known_subjects
from expensura_events.envelope import EventEnvelope, utcnow
from expensura_events.metrics import exposition
from expensura_events.projections import (
    InboxRetention,
    LocalLogFeed,
    Projection,
    ProjectionRunner,
    rebuild,
)
from expensura_events.retention import purge_expired
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import projection_inbox, projection_inbox_floors, relay_position
from expensura_events.testing.events import NoteRecorded, note
from expensura_identity.app import service_definition as identity
from expensura_ops.testing.stack import LocalStack, eventually

trail_metadata = MetaData()
note_trail = Table(
    "note_trail",
    trail_metadata,
    Column("subject_id", Text, primary_key=True),
    Column("counters", Text, nullable=False),
    Column("applied", Integer, nullable=False),
)


class NoteTrail(Projection):
    """Keeps each subject's note counters in the order applied: disorder would show."""

    name = "note-trail"
    sources = ("identity",)
    tables = (note_trail,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if not isinstance(event.payload, NoteRecorded) or event.subject_id is None:
            return
        stmt = insert(note_trail).values(
            subject_id=event.subject_id, counters=str(event.payload.counter), applied=1
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["subject_id"],
                set_={
                    "counters": note_trail.c.counters + "," + stmt.excluded.counters,
                    "applied": note_trail.c.applied + 1,
                },
            )
        )


@pytest.fixture
async def runtimes(fresh_stack: LocalStack) -> AsyncIterator[tuple[ServiceRuntime, ServiceRuntime]]:
    owner = create_async_engine(fresh_stack.database_url("consent", admin=True))
    async with owner.begin() as conn:
        await conn.run_sync(trail_metadata.create_all)
        await conn.execute(text("GRANT ALL ON note_trail TO expensura_consent_app"))
    await owner.dispose()
    idp = ServiceRuntime(identity, fresh_stack.settings("identity"))
    cns = ServiceRuntime(consent, fresh_stack.settings("consent"))
    try:
        yield idp, cns
    finally:
        await idp.close()
        await cns.close()


async def _drain(rt: ServiceRuntime) -> None:
    while await rt.relay.publish_batch():
        pass


async def _snapshot(rt: ServiceRuntime) -> tuple[list[tuple[object, ...]], ...]:
    async with rt.engine.connect() as conn:
        subjects = (
            await conn.execute(select(known_subjects).order_by(known_subjects.c.subject_id))
        ).all()
        trail = (await conn.execute(select(note_trail).order_by(note_trail.c.subject_id))).all()
    return [tuple(r) for r in subjects], [tuple(r) for r in trail]


async def test_every_event_delivered_twice_with_subjects_interleaved_equals_one_clean_replay(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    idp, cns = runtimes
    subjects = [str(uuid.uuid4()) for _ in range(12)]
    for counter in range(5):  # subjects interleaved in the log
        async with idp.engine.begin() as conn:
            await idp.append(conn, [note(s, f"note {counter}", counter=counter) for s in subjects])

    await _drain(idp)
    async with idp.engine.begin() as conn:  # as after a relay crash: publish everything again
        await conn.execute(relay_position.update().values(last_seq=0))
    await _drain(idp)
    assert idp.relay.stats.published == 120

    stop = asyncio.Event()
    runners = [
        ProjectionRunner(cns.engine, cns.mapper, p, cns.settings.kafka(), group_id=f"test-{p.name}")
        for p in (KnownSubjects(), NoteTrail())
    ]
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:

        async def consumed() -> bool:
            return all(r.stats.applied + r.stats.duplicates == 120 for r in runners)

        await eventually(consumed, what="both copies of every event consumed")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert [(r.stats.applied, r.stats.duplicates) for r in runners] == [(60, 60), (60, 60)]
    delivered_twice = await _snapshot(cns)

    for projection in (KnownSubjects(), NoteTrail()):
        replayed = await rebuild(
            cns.engine, cns.mapper, projection, [LocalLogFeed(idp.engine, "identity")]
        )
        assert (replayed.applied, replayed.parked) == (60, [])
    clean_replay = await _snapshot(cns)

    assert delivered_twice == clean_replay
    subjects_rows, trail_rows = clean_replay
    assert {r[0] for r in subjects_rows} == set(subjects)
    assert all(r[3] == 5 for r in subjects_rows)  # identity_events: each applied once
    assert all(r[1:] == ("0,1,2,3,4", 5) for r in trail_rows)  # in each subject's order


async def test_the_relay_publishes_a_commit_when_notified_not_when_its_fallback_ends(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    """An idle relay waits on the log's notification (eventstore_0005): with a fallback far
    longer than the test, a commit is published within seconds only if the notice woke it."""
    idp, _ = runtimes
    # the fallback, listening or polling: nothing but the notice would wake it in time
    idp.relay.lock_check_interval = idp.relay.idle_interval = 120.0
    stop = asyncio.Event()
    running = asyncio.create_task(idp.relay.run(stop))
    try:

        async def caught_up() -> bool:
            return bool(idp.relay.stats.published == 0 and not running.done())

        await eventually(caught_up, timeout=10, what="the relay to start idle")
        await asyncio.sleep(1.0)  # now in its idle wait
        async with idp.engine.begin() as conn:
            await idp.append(conn, [note(str(uuid.uuid4()), "wake up")])

        async def published() -> bool:
            return idp.relay.stats.published == 1

        await eventually(published, timeout=10, what="the notified relay to publish")
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def _consume(
    cns: ServiceRuntime, projections: Sequence[Projection], group: str, expected: int
) -> list[ProjectionRunner]:
    """Run each projection under a new consumer group (no committed offsets: from the first
    record of the topic) until it has consumed `expected` records."""
    stop = asyncio.Event()
    runners = [
        ProjectionRunner(
            cns.engine, cns.mapper, p, cns.settings.kafka(), group_id=f"{group}-{p.name}"
        )
        for p in projections
    ]
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:

        async def consumed() -> bool:
            return all(r.stats.applied + r.stats.duplicates == expected for r in runners)

        await eventually(consumed, what=f"{expected} records consumed by each projection")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return runners


async def _inbox(cns: ServiceRuntime, names: set[str]) -> tuple[int, dict[str, int]]:
    async with cns.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(projection_inbox.c.event_id).where(projection_inbox.c.projection.in_(names))
            )
        ).all()
        floors = (
            await conn.execute(
                select(
                    projection_inbox_floors.c.projection, projection_inbox_floors.c.recorded_at
                ).where(projection_inbox_floors.c.projection.in_(names))
            )
        ).all()
    return len(rows), {r.projection: r.recorded_at for r in floors}


async def test_a_purged_inbox_applies_nothing_twice_when_the_whole_log_comes_back(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    """The inbox is bounded (InboxRetention) and still makes every effect happen once: after
    the purge deleted every row, the broker republishing the whole log to a consumer that
    lost its offsets applies only the events it had not seen."""
    idp, cns = runtimes
    projections: list[Projection] = [KnownSubjects(), NoteTrail()]
    names = {p.name for p in projections}
    old, new = [str(uuid.uuid4()) for _ in range(12)], [str(uuid.uuid4()) for _ in range(3)]
    for counter in range(5):
        async with idp.engine.begin() as conn:
            await idp.append(conn, [note(s, f"note {counter}", counter=counter) for s in old])
    await _drain(idp)
    first = await _consume(cns, projections, "before-purge", 60)
    assert [(r.stats.applied, r.stats.duplicates) for r in first] == [(60, 0), (60, 0)]
    assert (await _inbox(cns, names))[0] == 120

    # A week later (the default retention) the purge raises each floor and deletes the rows.
    rule = InboxRetention(keep=timedelta(days=7))
    assert cns.definition.retention_rules(cns.settings)[0] == rule  # what the worker runs
    deleted = await purge_expired(cns.engine, [rule], utcnow() + timedelta(days=7, hours=1))
    assert deleted == {"projection_inbox": 120}
    rows, floors = await _inbox(cns, names)
    assert rows == 0 and floors.keys() == names
    assert len(set(floors.values())) == 1  # when the last note was recorded, for both

    for counter in range(5):  # new events after the floor
        async with idp.engine.begin() as conn:
            await idp.append(conn, [note(s, f"note {counter}", counter=counter) for s in new])
    await _drain(idp)
    async with idp.engine.begin() as conn:  # the broker lost its data: the whole log again
        await conn.execute(relay_position.update().values(last_seq=0))
    await _drain(idp)
    # The topic now holds the 60 old records, 15 new ones and all 75 republished: 150.
    again = await _consume(cns, projections, "offsets-lost", 150)
    assert [(r.stats.applied, r.stats.duplicates) for r in again] == [(15, 135), (15, 135)]
    after_replay = await _snapshot(cns)
    _, trail_rows = after_replay
    assert len(trail_rows) == 15
    assert all(r[1:] == ("0,1,2,3,4", 5) for r in trail_rows)  # nothing applied twice

    for projection in projections:  # a rebuild from the log agrees, and drops the floors
        replayed = await rebuild(
            cns.engine, cns.mapper, projection, [LocalLogFeed(idp.engine, "identity")]
        )
        assert (replayed.applied, replayed.parked) == (75, [])
    assert await _snapshot(cns) == after_replay
    assert await _inbox(cns, names) == (150, {})


class GatedTrail(NoteTrail):
    """NoteTrail that applies only once its gate opens: a consumer held behind."""

    name = "gated-trail"
    gate: asyncio.Event

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        await self.gate.wait()
        await super().apply(conn, event)


def _exported(service: str, name: str, **labels: str) -> float:
    text = exposition(service, []).decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels == {"service": service, **labels}
    )


async def test_the_relay_and_projection_series_follow_what_is_published_and_applied(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    """Relay lag (from the database) and published count; a projection's lag while it is
    held behind, 0 once it caught up, and its applied count."""
    idp, cns = runtimes
    published = _exported("identity", "expensura_relay_published_total")
    async with idp.engine.begin() as conn:
        for i in range(3):
            await idp.append(conn, [note(str(uuid.uuid4()), f"note {i}")])
    assert await idp.relay.lag() == 3
    await _drain(idp)
    assert await idp.relay.lag() == 0
    assert _exported("identity", "expensura_relay_published_total") == published + 3

    trail = GatedTrail()
    trail.gate = asyncio.Event()
    runner = ProjectionRunner(
        cns.engine, cns.mapper, trail, cns.settings.kafka(), "test-lag", service="lag-test"
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:

        async def held_behind() -> bool:
            return runner.stats.lag_seconds("identity", utcnow()) > 0

        await eventually(held_behind, what="the held projection to show a lag")
        # the publication time of what waits: seconds ago, not the epoch
        assert runner.stats.lag_seconds("identity", utcnow()) < 600
        trail.gate.set()

        async def caught_up() -> bool:
            return runner.stats.applied == 3 and runner.stats.lag_seconds("identity", utcnow()) == 0

        await eventually(caught_up, what="the projection to apply all and catch up")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    labels = {"projection": "gated-trail"}
    assert _exported("lag-test", "expensura_projection_applied_total", **labels) == 3
