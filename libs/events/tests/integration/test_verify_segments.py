"""`log verify` cut into segments verified by worker processes gives the verdict one walk
gives: a record edited in any segment (its first link, either side of a join, the last) is
named at its sequence, a deleted link as a gap, against real PostgreSQL (SEC-3)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from expensura_events import store
from expensura_events.chain import Verification
from expensura_events.mapper import canonical_json
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import verify_log
from expensura_events.tables import event_log
from expensura_events.testing.events import note
from expensura_identity.app import service_definition as identity
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("SEC-3")

EVENTS = 40  # four segments of 10 with the limits below


@pytest.fixture
async def rt(fresh_stack: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(identity, fresh_stack.settings("identity"))
    try:
        async with runtime.engine.begin() as conn:
            s = str(uuid.uuid4())
            await runtime.append(conn, [note(s, f"n{i}") for i in range(EVENTS)])
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def owner(fresh_stack: LocalStack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(fresh_stack.database_url("identity", admin=True))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers from 20 links on, 10 links a segment: the parallel path over a small log.
    monkeypatch.setattr(store, "PARALLEL_FROM", 20)
    monkeypatch.setattr(store, "SEGMENT_LINKS", 10)


async def both(
    rt: ServiceRuntime, progress: list[int] | None = None
) -> tuple[Verification, Verification]:
    """The verdict of worker processes, then of one walk in this process."""
    progress = [] if progress is None else progress
    async with rt.engine.connect() as conn:
        parallel = await verify_log(conn, workers=2, progress=progress.append)
        serial = await verify_log(conn, workers=1)
    return parallel, serial


async def edit(owner: AsyncEngine, seq: int, record: bytes | None = None) -> bytes:
    """Replace the stored record at `seq` (a superuser with the trigger off); returns the
    original, to put back with a second call."""
    async with owner.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        original = (
            await conn.execute(select(event_log.c.record).where(event_log.c.seq == seq))
        ).scalar_one()
        if record is None:
            record = canonical_json(json.loads(original) | {"purpose": "marketing"})
        await conn.execute(event_log.update().where(event_log.c.seq == seq).values(record=record))
    return bytes(original)


async def test_an_intact_log_verifies_the_same_in_segments(rt: ServiceRuntime) -> None:
    progress: list[int] = []
    parallel, serial = await both(rt, progress)
    assert progress == [10] * 4  # four segments, each verified by a worker (one walk: [40])
    assert parallel == serial
    assert parallel.ok and parallel.checked == EVENTS and parallel.head_seq == EVENTS


@pytest.mark.parametrize("seq", [1, 10, 11, 20, 21, 40], ids=lambda s: f"seq{s}")
async def test_an_edited_record_is_named_in_any_segment(
    rt: ServiceRuntime, owner: AsyncEngine, seq: int
) -> None:
    original = await edit(owner, seq)
    parallel, serial = await both(rt)
    assert parallel == serial
    assert parallel.first_broken == seq and parallel.checked == seq - 1
    assert "hash does not match" in (parallel.reason or "")
    await edit(owner, seq, original)
    assert (await both(rt))[0].ok


async def test_a_deleted_link_at_a_join_is_named_as_a_gap(
    rt: ServiceRuntime, owner: AsyncEngine
) -> None:
    async with owner.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(event_log.delete().where(event_log.c.seq == 20))  # a segment's end
    parallel, serial = await both(rt)
    assert parallel == serial
    assert parallel.first_broken == 21 and parallel.checked == 19
    assert parallel.reason == "sequence gap: expected 20, found 21"


async def test_a_range_verifies_from_its_stored_link(rt: ServiceRuntime) -> None:
    async with rt.engine.connect() as conn:
        parallel = await verify_log(conn, after=5, upto=35, workers=2)
        serial = await verify_log(conn, after=5, upto=35, workers=1)
    assert parallel == serial
    assert parallel.ok and parallel.checked == 30 and parallel.head_seq == 35
