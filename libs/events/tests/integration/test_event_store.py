"""The event store's contract, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from expensura_events.cipher import ENC_MARK, SubjectErased
from expensura_events.envelope import REDACTED, EventEnvelope
from expensura_events.mapper import canonical_json
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import StreamVersionConflict, verify_log
from expensura_events.tables import event_log, event_log_pending
from expensura_events.testing.events import NoteRecorded, note
from expensura_identity.app import service_definition as identity
from expensura_ops.testing.stack import LocalStack


@pytest.fixture
async def rt(fresh_stack: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(identity, fresh_stack.settings("identity"))
    try:
        yield runtime
    finally:
        await runtime.close()


def subject() -> str:
    return str(uuid.uuid4())


async def test_conflicting_appends_one_wins_other_conflicts_nothing_half_written(
    fresh_stack: LocalStack, rt: ServiceRuntime
) -> None:
    s = subject()
    owner = create_async_engine(fresh_stack.database_url("identity", admin=True))
    async with owner.begin() as conn:
        await conn.execute(text("CREATE TABLE scratch_state (writer text)"))
        await conn.execute(text("GRANT ALL ON scratch_state TO expensura_identity_app"))
    await owner.dispose()
    barrier = asyncio.Barrier(2)

    async def writer(name: str) -> str:
        async with rt.engine.begin() as conn:
            # the writer's own state change, which must vanish if its append conflicts
            await conn.execute(text("INSERT INTO scratch_state VALUES (:w)"), {"w": name})
            await barrier.wait()
            await rt.append(conn, [note(s, f"from {name}")], expected_version=0)
        return name

    results = await asyncio.gather(writer("a"), writer("b"), return_exceptions=True)
    winners = [r for r in results if isinstance(r, str)]
    conflicts = [r for r in results if isinstance(r, StreamVersionConflict)]
    assert len(winners) == 1 and len(conflicts) == 1, results
    async with rt.engine.connect() as conn:
        states = (await conn.execute(text("SELECT writer FROM scratch_state"))).scalars().all()
        events = await rt.store.read_stream(conn, f"notes-{s}")
    assert states == winners
    assert [e.payload.note for e in events] == [f"from {winners[0]}"]
    assert events[0].stream_version == 1


async def test_expected_version_follows_the_stream(rt: ServiceRuntime) -> None:
    s = subject()
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(s, "one"), note(s, "two")], expected_version=0)
    async with rt.engine.begin() as conn:
        recorded = await rt.append(conn, [note(s, "three")], expected_version=2)
    assert recorded[0].stream_version == 3
    with pytest.raises(StreamVersionConflict) as err:
        async with rt.engine.begin() as conn:
            await rt.append(conn, [note(s, "stale")], expected_version=2)
    assert (err.value.expected, err.value.actual) == (2, 3)


async def test_sequence_is_gap_free_under_concurrent_writers_with_rollbacks(
    rt: ServiceRuntime,
) -> None:
    class Abort(Exception):
        pass

    async def writer(i: int) -> None:
        for j in range(10):
            try:
                async with rt.engine.begin() as conn:
                    await rt.append(conn, [note(subject(), f"w{i}-{j}")])
                    if j % 3 == 0:
                        raise Abort  # rolled back after taking a sequence number
            except Abort:
                pass

    await asyncio.gather(*(writer(i) for i in range(16)))
    async with rt.engine.connect() as conn:
        seqs = (await conn.execute(select(event_log.c.seq).order_by(event_log.c.seq))).scalars()
        seqs = list(seqs)
        result = await verify_log(conn)
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) == 16 * 6
    assert result.ok and result.checked == len(seqs)


async def test_writers_racing_on_one_stream_without_expected_version_all_land_in_order(
    rt: ServiceRuntime,
) -> None:
    """Each builds and signs its records on the stream version it read before the lock; the
    ones that find the stream moved under the lock rebuild on the new version, once."""
    s = subject()
    stream = f"notes-{s}"

    async def writer(i: int) -> None:
        for j in range(3):
            async with rt.engine.begin() as conn:
                await rt.append(conn, [note(s, f"w{i}-{j}-a"), note(s, f"w{i}-{j}-b")])

    await asyncio.gather(*(writer(i) for i in range(8)))
    async with rt.engine.connect() as conn:
        events = await rt.store.read_stream(conn, stream)
        version = await rt.store.stream_version(conn, stream)
        result = await verify_log(conn)
    assert [e.stream_version for e in events] == list(range(1, 49))
    assert version == 48
    # a batch stays contiguous in its stream: nothing interleaves with it
    for first, second in zip(events[::2], events[1::2], strict=True):
        assert first.payload.note.endswith("-a") and second.payload.note.endswith("-b")
        assert second.payload.note[:-2] == first.payload.note[:-2]
    assert result.ok and result.checked == 48


async def test_one_transaction_appends_twice_and_to_several_streams(rt: ServiceRuntime) -> None:
    a, b = subject(), subject()
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(a, "a1")], expected_version=0)
        both = await rt.append(conn, [note(b, "b1"), note(a, "a2"), note(b, "b2")])
        again = await rt.append(conn, [note(a, "a3")], expected_version=2)
    assert [(e.stream_id, e.stream_version) for e in both] == [
        (f"notes-{b}", 1),
        (f"notes-{a}", 2),
        (f"notes-{b}", 2),
    ]
    async with rt.engine.connect() as conn:
        at = await positions(conn)
        assert [at[e.event_id] for e in both] == [2, 3, 4]
        assert (again[0].stream_version, at[again[0].event_id]) == (3, 5)
        assert await rt.store.stream_version(conn, f"notes-{a}") == 3
        assert await rt.store.stream_version(conn, f"notes-{b}") == 2
        stored = (await conn.execute(select(event_log.c.seq, event_log.c.stream_version))).all()
        assert sorted(stored) == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)]
        assert (await verify_log(conn)).ok


async def test_a_rolled_back_append_leaves_the_stream_version_where_it_was(
    rt: ServiceRuntime,
) -> None:
    s = subject()

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with rt.engine.begin() as conn:
            await rt.append(conn, [note(s, "gone")], expected_version=0)
            raise Abort
    async with rt.engine.begin() as conn:
        kept = await rt.append(conn, [note(s, "kept")], expected_version=0)
    async with rt.engine.connect() as conn:
        assert (kept[0].stream_version, (await positions(conn))[kept[0].event_id]) == (1, 1)


async def positions(conn: AsyncConnection) -> dict[uuid.UUID, int]:
    """Each sequenced event's position in the log."""
    rows = await conn.execute(select(event_log.c.event_id, event_log.c.seq))
    return {r.event_id: r.seq for r in rows}


async def test_an_open_append_holds_back_no_other_writer_and_takes_no_position(
    rt: ServiceRuntime,
) -> None:
    """Positions go to committed records only, in the order the sequencer finds them: an
    append still open blocks no writer of another stream, has no position, and gets the
    next one after it commits, so the relay (which follows the log by position) can never
    pass a position that becomes visible later."""
    first_done = asyncio.Event()
    release = asyncio.Event()

    async def earlier() -> uuid.UUID:
        async with rt.engine.begin() as conn:
            [recorded] = await rt.append(conn, [note(subject(), "earlier")])
            first_done.set()
            await release.wait()
        return recorded.event_id

    first = asyncio.create_task(earlier())
    await first_done.wait()
    later = await asyncio.wait_for(append_after(rt, subject()), 10)  # not held back
    async with rt.engine.connect() as conn:
        assert await positions(conn) == {later.event_id: 1}
        # the open append's record is nowhere a reader of the log or the pending table sees
        assert (await conn.execute(select(event_log_pending.c.id))).all() == []
    release.set()
    earlier_id = await first
    async with rt.engine.connect() as conn:
        assert await positions(conn) == {later.event_id: 1, earlier_id: 2}
        assert (await verify_log(conn)).ok


async def test_a_writer_killed_before_commit_leaves_no_trace_and_blocks_nobody(
    fresh_stack: LocalStack, rt: ServiceRuntime
) -> None:
    """A writer whose connection dies after its append and before its commit: the database
    aborts its transaction, which frees its stream's row; the next writer of that stream,
    which was waiting for it, takes the same stream version and the next position, and a
    writer of another stream never waited at all."""
    s = subject()
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(s, "before")], expected_version=0)
    doomed = rt.engine.connect()
    conn = await doomed.__aenter__()
    await conn.begin()
    await rt.append(conn, [note(s, "never committed")], expected_version=1)
    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    waiting = asyncio.create_task(append_after(rt, s))
    other = await asyncio.wait_for(append_after(rt, subject()), 10)
    await asyncio.sleep(0.3)
    assert not waiting.done()  # the open append holds its stream's row
    owner = create_async_engine(fresh_stack.database_url("identity", admin=True))
    try:
        async with owner.begin() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        await owner.dispose()
    recorded = await asyncio.wait_for(waiting, 30)
    with contextlib.suppress(Exception):
        await doomed.__aexit__(None, None, None)
    async with rt.engine.connect() as c:
        notes = [e.payload.note for e in await rt.store.read_stream(c, f"notes-{s}")]
        at = await positions(c)
        result = await verify_log(c)
    assert recorded.stream_version == 2
    assert (at[other.event_id], at[recorded.event_id]) == (2, 3)
    assert notes == ["before", "after"]
    assert result.ok and result.checked == 3


async def append_after(rt: ServiceRuntime, s: str) -> EventEnvelope:
    async with rt.engine.begin() as conn:
        [recorded] = await rt.append(conn, [note(s, "after")])
    return recorded


async def test_service_role_cannot_update_or_delete_the_log(rt: ServiceRuntime) -> None:
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(subject(), "immutable")])
    for statement in (
        "UPDATE event_log SET event_type = 'x'",
        "DELETE FROM event_log",
        "TRUNCATE event_log",
    ):
        with pytest.raises(DBAPIError, match=r"permission denied|append-only"):
            async with rt.engine.begin() as conn:
                await conn.execute(text(statement))


async def test_even_the_owner_is_refused_by_the_trigger(
    fresh_stack: LocalStack, rt: ServiceRuntime
) -> None:
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(subject(), "immutable")])
    owner = create_async_engine(fresh_stack.database_url("identity", admin=True))
    try:
        for statement in ("UPDATE event_log SET event_type = 'x'", "DELETE FROM event_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with owner.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await owner.dispose()


@pytest.mark.obligation("SEC-3")
async def test_superuser_tampering_is_named_by_log_verify(
    fresh_stack: LocalStack, rt: ServiceRuntime
) -> None:
    s = subject()
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(s, f"n{i}") for i in range(5)])
    ok = fresh_stack.cli("log", "verify", "identity")
    assert "intact" in ok.stdout

    owner = create_async_engine(fresh_stack.database_url("identity", admin=True))
    try:
        async with owner.begin() as conn:
            # A superuser can switch triggers off; the chain still tells.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            row = (
                await conn.execute(select(event_log.c.record).where(event_log.c.seq == 3))
            ).scalar_one()
            forged = json.loads(row)
            forged["purpose"] = "marketing"
            await conn.execute(
                event_log.update().where(event_log.c.seq == 3).values(record=canonical_json(forged))
            )
    finally:
        await owner.dispose()
    broken = fresh_stack.cli("log", "verify", "identity", check=False)
    assert broken.returncode == 1
    assert "BROKEN at sequence 3" in broken.stdout


async def test_deleting_a_row_is_named_as_a_gap(
    fresh_stack: LocalStack, rt: ServiceRuntime
) -> None:
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(subject(), f"n{i}") for i in range(4)])
    owner = create_async_engine(fresh_stack.database_url("identity", admin=True))
    try:
        async with owner.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(event_log.delete().where(event_log.c.seq == 2))
        async with owner.connect() as conn:
            result = await verify_log(conn)
    finally:
        await owner.dispose()
    assert not result.ok
    assert result.first_broken == 3 and "gap" in (result.reason or "")


@pytest.mark.obligation("SEC-1")
async def test_personal_fields_are_stored_encrypted_and_read_back(rt: ServiceRuntime) -> None:
    s = subject()
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(s, "call me on +14155550123")])
    async with rt.engine.connect() as conn:
        raw = (
            await conn.execute(select(event_log.c.record).where(event_log.c.subject_id == s))
        ).scalar_one()
        events = await rt.store.read_subject(conn, s)
    assert b"+14155550123" not in raw
    assert json.loads(raw)["payload"]["note"][ENC_MARK] == "A256GCM"
    assert isinstance(events[0].payload, NoteRecorded)
    assert events[0].payload.note == "call me on +14155550123"


async def test_shredded_subject_reads_redacted_and_the_chain_still_verifies(
    rt: ServiceRuntime,
) -> None:
    gone, kept = subject(), subject()
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(gone, "secret of gone"), note(kept, "secret of kept")])
    assert await rt.mapper.cipher.keys.destroy(gone)
    async with rt.engine.connect() as conn:
        [gone_event] = await rt.store.read_subject(conn, gone)
        [kept_event] = await rt.store.read_subject(conn, kept)
        result = await verify_log(conn)
    assert gone_event.payload.note == REDACTED
    assert kept_event.payload.note == "secret of kept"
    assert result.ok
    with pytest.raises(SubjectErased):
        async with rt.engine.begin() as conn:
            await rt.append(conn, [note(gone, "new data after erasure")])


async def test_old_versions_are_upcast_on_read(rt: ServiceRuntime) -> None:
    s = subject()
    async with rt.engine.begin() as conn:
        [recorded] = await rt.append(conn, [note(s, "x")])
    # Write the record as version 1 stored it: the field was called `text`, no `priority`.
    sealed_v1 = await rt.mapper.cipher.encrypt_fields(
        s, str(recorded.event_id), {"text": "old words"}
    )
    v1 = recorded.model_copy(update={"schema_version": 1})
    event = await rt.mapper.from_record(rt.mapper.to_record(v1, sealed_v1 | {"counter": 0}))
    assert isinstance(event.payload, NoteRecorded)
    assert event.payload.note == "old words"
    assert event.payload.priority == 0


@pytest.mark.obligation("RUL-2", "RGT-3")
async def test_records_under_a_retention_hold_outlive_erasure_until_the_hold_ends(
    rt: ServiceRuntime,
) -> None:
    from expensura_events.privacy.shredding import held_records, release_hold

    s = subject()
    held = note(s, "loan contract signed by +14155550777").model_copy(
        update={"retention_hold": "loan-records"}
    )
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(s, "marketing preference"), held])
    await rt.mapper.cipher.keys.destroy(s)  # the subject is erased …
    async with rt.engine.connect() as conn:
        free, kept = await rt.store.read_subject(conn, s)
        assert await held_records(rt, conn, s) == {"loan-records": 1}
    assert free.payload.note == REDACTED
    assert kept.payload.note == "loan contract signed by +14155550777"  # … the law's record stays
    with pytest.raises(SubjectErased):  # but nothing new may be held about them
        async with rt.engine.begin() as conn:
            await rt.append(conn, [held.model_copy(update={"event_id": uuid.uuid4()})])

    assert await release_hold(rt, s, "loan-records", "retention period over")
    async with rt.engine.connect() as conn:
        events = await rt.store.read_subject(conn, s)
        assert await held_records(rt, conn, s) == {}
        assert (await verify_log(conn)).ok
    assert events[1].payload.note == REDACTED
    assert events[-1].event_type == "platform.RetentionHoldEnded"
