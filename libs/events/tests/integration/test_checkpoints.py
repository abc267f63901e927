"""Checkpoints and witness records against real PostgreSQL: when a service checkpoints, and
that witnessing never feeds back into checkpointing (SEC-3)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.platform import ChainCheckpoint, CheckpointWitnessed
from expensura_events.envelope import Actor, EventEnvelope, new_event_id, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import EventStore
from expensura_events.tables import event_log
from expensura_events.testing.events import note
from expensura_events.vocabulary import Purpose
from expensura_events.witnessing import chain_witness, checkpoint_once
from expensura_identity.app import service_definition as identity
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("SEC-3")


@pytest.fixture
async def rt(fresh_stack: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(identity, fresh_stack.settings("identity"))
    try:
        yield runtime
    finally:
        await runtime.close()


async def head(rt: ServiceRuntime) -> tuple[int, bytes]:
    async with rt.engine.connect() as conn:
        return await EventStore.head(conn)


async def position(rt: ServiceRuntime, event: EventEnvelope) -> int:
    """Where the sequencer put an appended event (appends return none: it comes after commit)."""
    async with rt.engine.connect() as conn:
        found = await conn.execute(
            select(event_log.c.seq).where(event_log.c.event_id == event.event_id)
        )
        return int(found.scalar_one())


async def append_note(rt: ServiceRuntime) -> None:
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(str(uuid.uuid4()), "something happened")])


def peer_checkpoint(source: str, sequence: int) -> EventEnvelope:
    payload = ChainCheckpoint(sequence=sequence, head_hash="ab" * 32, at=utcnow())
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source=source,
        stream_id="chain-checkpoints",
        stream_version=1,
        subject_id=None,
        actor=Actor.system(source),
        purpose=Purpose.SECURITY,
        correlation_id=new_event_id(),
        payload=payload,
    )


async def test_a_checkpoint_names_the_head_and_only_business_records_call_for_the_next(
    rt: ServiceRuntime,
) -> None:
    assert await checkpoint_once(rt) is None  # an empty log has nothing to vouch for

    await append_note(rt)
    await append_note(rt)
    seq, digest = await head(rt)
    first = await checkpoint_once(rt)
    assert first is not None and isinstance(first.payload, ChainCheckpoint)
    assert (first.payload.sequence, first.payload.head_hash) == (seq, digest.hex())
    assert await position(rt, first) == seq + 1
    assert await checkpoint_once(rt) is None  # the checkpoint itself is no movement

    # a witness record of a peer's checkpoint is no movement either: no loop
    witness = chain_witness(rt.name)
    witness.bind(rt)
    async with rt.engine.begin() as conn:
        await witness.apply(conn, peer_checkpoint("consent", 7))
    assert (await head(rt))[0] == seq + 2
    assert await checkpoint_once(rt) is None

    await append_note(rt)
    later_seq, later_digest = await head(rt)
    second = await checkpoint_once(rt)
    assert second is not None and isinstance(second.payload, ChainCheckpoint)
    assert (second.payload.sequence, second.payload.head_hash) == (later_seq, later_digest.hex())


async def test_a_record_appended_while_a_checkpoint_is_taken_gets_the_next_one(
    rt: ServiceRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-up committed between the checkpoint's read of the head and its append sits
    before the checkpoint in the log but is not covered by it: the next round covers it
    (else nothing would vouch for it until the next business record: CI saw witnesses wait)."""
    await append_note(rt)
    read_head = EventStore.head

    async def head_then_an_append(conn: AsyncConnection) -> tuple[int, bytes]:
        found = await read_head(conn)
        await append_note(rt)  # another transaction commits in between
        return found

    monkeypatch.setattr(EventStore, "head", staticmethod(head_then_an_append))
    first = await checkpoint_once(rt)
    monkeypatch.undo()
    assert first is not None and isinstance(first.payload, ChainCheckpoint)
    # the note at 2 is not covered
    assert (first.payload.sequence, await position(rt, first)) == (1, 3)

    second = await checkpoint_once(rt)
    assert second is not None and isinstance(second.payload, ChainCheckpoint)
    assert second.payload.sequence == 3
    assert await checkpoint_once(rt) is None  # and then no movement: no loop


async def test_the_witness_records_each_peer_checkpoint_once_and_nothing_else(
    rt: ServiceRuntime,
) -> None:
    witness = chain_witness(rt.name)
    witness.bind(rt)
    assert rt.name not in witness.sources
    seen = peer_checkpoint("loans", 12)
    async with rt.engine.begin() as conn:
        await witness.apply(conn, seen)
        await witness.apply(conn, seen)  # a rebuild replays it: still one record
        await witness.apply(conn, peer_checkpoint(rt.name, 3))  # its own: not a witness
    async with rt.engine.connect() as conn:
        records = await EventStore.read_records(conn, 0, 100)
    assert [r.event_type for r in records] == ["platform.CheckpointWitnessed"]
    async with rt.engine.connect() as conn:
        [recorded] = await rt.store.read_stream(conn, records[0].stream_id)
    assert isinstance(recorded.payload, CheckpointWitnessed)
    assert recorded.payload.source == "loans"
    assert (recorded.payload.sequence, recorded.payload.head_hash) == (12, "ab" * 32)
    assert recorded.payload.checkpoint_event_id == seen.event_id


async def test_the_log_feed_serves_only_the_types_asked_for(rt: ServiceRuntime) -> None:
    await append_note(rt)
    await checkpoint_once(rt)
    await append_note(rt)
    async with rt.engine.connect() as conn:
        only = await EventStore.read_records(conn, 0, 100, ["platform.ChainCheckpoint"])
        every = await EventStore.read_records(conn, 0, 100)
    assert [r.seq for r in only] == [2]
    assert len(every) == 3
