"""The sequencer's failure cases (docs/architecture.md, "Appends and the sequencer"), against
real PostgreSQL: a writer that crashes between its commit and the sequencing, two
sequencers at once, a sequencer killed in the middle of a batch."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
import structlog
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from expensura_events.runtime import ServiceRuntime
from expensura_events.sequencer import sequence_all, sequence_pending
from expensura_events.store import verify_log
from expensura_events.tables import event_log, event_log_pending
from expensura_events.testing.events import note
from expensura_identity.app import service_definition as identity
from expensura_ops.testing.stack import LocalStack


@pytest.fixture
async def rt(fresh_stack: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(identity, fresh_stack.settings("identity"))
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def plain(fresh_stack: LocalStack) -> AsyncIterator[AsyncEngine]:
    """An engine of the service's role that does not sequence after commit: what a writer
    leaves behind when it dies between its commit and the sequencing."""
    engine = create_async_engine(fresh_stack.database_url("identity"))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def owner(fresh_stack: LocalStack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(fresh_stack.database_url("identity", admin=True))
    try:
        yield engine
    finally:
        await engine.dispose()


def subject() -> str:
    return str(uuid.uuid4())


async def committed_unsequenced(rt: ServiceRuntime, plain: AsyncEngine, notes: int) -> list[str]:
    """`notes` appends committed through `plain`, one transaction each, none sequenced."""
    ids = []
    for i in range(notes):
        async with plain.begin() as conn:
            [e] = await rt.append(conn, [note(subject(), f"n{i}")])
        ids.append(str(e.event_id))
    return ids


async def logged(engine: AsyncEngine) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(event_log.c.seq, event_log.c.event_id).order_by("seq"))
        return [(r.seq, str(r.event_id)) for r in rows]


async def pending_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(event_log_pending))).scalar_one()
        )


async def test_a_writer_that_died_between_commit_and_sequencing_is_sequenced_by_the_next(
    rt: ServiceRuntime, plain: AsyncEngine
) -> None:
    """Its records are durable and readable in their stream at once; the next sequencing
    run (another writer's, or the relay's sweep) gives them the positions before its own."""
    s = subject()
    async with plain.begin() as conn:
        [orphan] = await rt.append(conn, [note(s, "committed, then the writer died")])
    await plain.dispose()
    assert await logged(rt.engine) == []
    assert await rt.relay.lag() == 1  # what an operator sees: committed, not yet published
    async with rt.engine.connect() as conn:
        [read] = await rt.store.read_stream(conn, f"notes-{s}")
    assert (read.event_id, read.stream_version, read.sequence) == (orphan.event_id, 1, None)

    async with rt.engine.begin() as conn:  # any later writer of the database
        [later] = await rt.append(conn, [note(subject(), "later")])
    assert await logged(rt.engine) == [(1, str(orphan.event_id)), (2, str(later.event_id))]
    assert await pending_count(rt.engine) == 0
    async with rt.engine.connect() as conn:
        assert (await verify_log(conn)).ok
        [read] = await rt.store.read_stream(conn, f"notes-{s}")
    assert read.sequence == 1


async def test_two_sequencers_at_once_give_each_record_exactly_one_position(
    fresh_stack: LocalStack, rt: ServiceRuntime, plain: AsyncEngine, owner: AsyncEngine
) -> None:
    """Two sequencers (two engines, as two processes would be) run while writers commit:
    they take turns on the log's lock, and whichever comes second finds the rows gone."""
    second = create_async_engine(fresh_stack.database_url("identity"))
    writing = True

    async def writer(i: int) -> list[str]:
        ids = []
        for j in range(15):
            async with plain.begin() as conn:
                [e] = await rt.append(conn, [note(subject(), f"w{i}-{j}")])
            ids.append(str(e.event_id))
        return ids

    async def sequencer(engine: AsyncEngine) -> int:
        moved = 0
        while writing:
            moved += (await sequence_all(engine, max_rows=7)).moved
            await asyncio.sleep(0)
        return moved

    try:
        runs = [asyncio.create_task(sequencer(rt.engine)), asyncio.create_task(sequencer(second))]
        written = await asyncio.gather(*(writer(i) for i in range(6)))
        writing = False
        moved = sum(await asyncio.gather(*runs)) + (await sequence_all(second)).moved
    finally:
        await second.dispose()
    everything = sorted(e for ids in written for e in ids)
    log = await logged(owner)
    assert moved == len(everything) == 90
    assert [seq for seq, _ in log] == list(range(1, 91))
    assert sorted(e for _, e in log) == everything  # each once, none lost
    assert await pending_count(owner) == 0
    async with owner.connect() as conn:
        assert (await verify_log(conn)).ok


async def test_a_sequencer_killed_mid_batch_leaves_the_records_pending_for_the_next(
    rt: ServiceRuntime, plain: AsyncEngine, owner: AsyncEngine
) -> None:
    """Killed after it moved a batch and before its commit: the database aborts the move,
    which frees the lock; nothing is in the log, everything is still pending, and the next
    sequencer moves it all, linked onto the head as if nothing had happened."""
    ids = await committed_unsequenced(rt, plain, 12)
    doomed = rt.engine.connect()
    conn = await doomed.__aenter__()
    await conn.begin()
    assert await sequence_pending(conn, max_rows=100) == (12, 12)  # moved, not committed
    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with owner.begin() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    with contextlib.suppress(Exception):  # its connection is gone: that is the point
        await doomed.__aexit__(None, None, None)
    assert await logged(owner) == []
    assert await pending_count(owner) == 12
    assert await sequence_all(rt.engine) == (12, 12)
    assert [e for _, e in await logged(owner)] == ids
    async with owner.connect() as c:
        assert (await verify_log(c)).ok


async def test_pending_records_leave_only_into_the_log(
    rt: ServiceRuntime, plain: AsyncEngine, owner: AsyncEngine
) -> None:
    """An acknowledged record cannot be dropped before it is sequenced: the service role may
    not update or delete pending rows at all, and the owner only deletes what the log holds
    (which is what the sequencer does)."""
    await committed_unsequenced(rt, plain, 1)
    for statement in (
        "UPDATE event_log_pending SET event_type = 'x'",
        "DELETE FROM event_log_pending",
        "TRUNCATE event_log_pending",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with plain.begin() as conn:
                await conn.execute(text(statement))
        with pytest.raises(DBAPIError, match="leaves only into the log"):
            async with owner.begin() as conn:
                await conn.execute(text(statement))
    assert await pending_count(owner) == 1
    assert await sequence_all(rt.engine) == (1, 1)
    assert await pending_count(owner) == 0
    assert await sequence_all(rt.engine) == (0, 1)  # nothing to do: it still names the head


async def test_a_write_whose_sequencing_fails_stays_acknowledged_and_is_placed_later(
    rt: ServiceRuntime, owner: AsyncEngine
) -> None:
    """The database refuses the sequencing after the writer's commit (here: the service
    role may no longer call it). The write is committed, so the writer is not told it
    failed: the record waits, readable in its stream, the failure is logged, and the next
    sequencer that can run places it."""
    s = subject()
    refuse = "REVOKE EXECUTE ON FUNCTION expensura_sequence(integer) FROM PUBLIC"
    allow = "GRANT EXECUTE ON FUNCTION expensura_sequence(integer) TO PUBLIC"
    async with owner.begin() as conn:
        await conn.execute(text(refuse))
    try:
        with structlog.testing.capture_logs() as logs:
            async with rt.engine.begin() as conn:
                [written] = await rt.append(conn, [note(s, "acknowledged")])
        assert [entry["event"] for entry in logs].count("sequencer.deferred") == 1
        assert await logged(owner) == []
        async with rt.engine.connect() as conn:
            [read] = await rt.store.read_stream(conn, f"notes-{s}")
        assert (read.event_id, read.sequence) == (written.event_id, None)
    finally:
        async with owner.begin() as conn:
            await conn.execute(text(allow))
    assert await sequence_all(rt.engine) == (1, 1)
    assert await logged(owner) == [(1, str(written.event_id))]
