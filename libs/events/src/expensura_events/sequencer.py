"""The sequencer: gives committed appends their positions in the log, a batch at a time.

An append commits its records unsequenced (`event_log_pending`, eventstore_0008), so
writers' commits do not take turns. `expensura_sequence` then moves whatever is committed
and pending into `event_log`, under the log's lock, linking each record to the chain; any
number of sequencers may call it (they take turns on the lock, and a later one finds the
rows gone), and one that dies mid-batch leaves the rows pending for the next.

Who calls it:
- the writer itself, right after its commit: `LogEngine.begin` (the engine every service
  uses) awaits `Sequencer.flush` when the transaction appended, so a write the service
  acknowledges is in the log by then, as before. Writers of one process share runs (group
  commit): a run that starts after a writer's commit covers it, so sixteen writers that
  commit together wait for one or two sequencing transactions, not sixteen;
- the outbox relay, at each of its lock checks: what a writer committed and never sequenced
  (it crashed in between, or it appended through a plain connection) is sequenced by then.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.db_errors import error_fields
from expensura_events.tracing import tracer

log = structlog.get_logger("expensura.sequencer")

# Set in a connection's `info` by an append; `LogEngine.begin` sequences after the commit.
APPENDED = "expensura.appended"
BATCH = 1000

_SEQUENCE = text("SELECT moved, head_seq FROM expensura_sequence(:max_rows)")


class Sequenced(NamedTuple):
    moved: int  # records given a position
    head: int | None  # the log's head after the move (None: the log is empty)


async def sequence_pending(conn: AsyncConnection, max_rows: int = BATCH) -> Sequenced:
    """Sequence up to `max_rows` committed pending records, in the caller's transaction
    (which must commit for the move to count)."""
    moved, head = (await conn.execute(_SEQUENCE, {"max_rows": max_rows})).one()
    return Sequenced(int(moved), None if head is None else int(head))


async def sequence_all(engine: AsyncEngine, max_rows: int = BATCH) -> Sequenced:
    """Sequence everything committed and pending, a transaction per batch."""
    moved, head = 0, None
    async with engine.connect() as conn:
        # Each call is its own transaction (the function does all a batch needs): one round
        # trip per batch, not three (BEGIN, the call, COMMIT).
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            done = await sequence_pending(conn, max_rows)
            moved += done.moved
            head = done.head if done.head is not None else head
            if done.moved < max_rows:
                return Sequenced(moved, head)


class Sequencer:
    """Group commit for one engine's writers: `flush` returns once a sequencing run that
    started after the call has finished, sharing runs between concurrent callers."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._asked = 0  # flushes asked for
        self._covered = 0  # flushes a finished run covers (it started after they were asked)
        self._last = Sequenced(0, None)  # what the last run did

    async def flush(self) -> None:
        self._asked += 1
        mine = self._asked  # my commit happened before this: a run starting now covers it
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # an asyncio lock serves one loop
            self._lock, self._loop = asyncio.Lock(), loop
        # The event store's last hop of a write's trace: its records got their positions,
        # by this caller's run or by one it waited for (`expensura.led`).
        with tracer.start_as_current_span("eventstore.sequence") as span:
            async with self._lock:
                led = self._covered < mine
                if led:
                    starting = self._asked
                    self._last = await sequence_all(self._engine)
                    self._covered = starting
            span.set_attribute("expensura.led", led)
            if led:
                span.set_attribute("expensura.sequenced", self._last.moved)
            if self._last.head is not None:
                span.set_attribute("expensura.head_seq", self._last.head)


class LogEngine(AsyncEngine):
    """An `AsyncEngine` whose `begin()` blocks sequence what they appended once committed
    (`Sequencer.flush`), so an acknowledged write is in the log, at its position."""

    sequencer: Sequencer

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with super().begin() as conn:
            yield conn
            appended = conn.info.pop(APPENDED, False)
        if appended:
            try:
                await self.sequencer.flush()
            except Exception as exc:
                # Committed, so durable: the relay's next lock check sequences it.
                log.warning("sequencer.deferred", **error_fields(exc))


def log_engine(engine: AsyncEngine) -> LogEngine:
    wrapped = LogEngine(engine.sync_engine)
    wrapped.sequencer = Sequencer(wrapped)
    return wrapped


def forget_appended(info: dict[str, Any]) -> None:
    """A pooled connection's mark, cleared when it goes back to the pool (its transaction
    rolled back, or committed through a path that does not sequence: the relay will)."""
    info.pop(APPENDED, None)
