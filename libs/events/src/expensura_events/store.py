"""The event store: append-only, gap-free, hash-chained, with optimistic concurrency.

An append does its costly work first (key look-ups, encryption, the record bytes built on
the stream versions read from `stream_versions`, their Ed25519 signatures), then makes one
call, `expensura_stage` (eventstore_0008): it locks the rows of the streams it appends to,
checks that none moved meanwhile, moves them and inserts the records unsequenced into
`event_log_pending`. Writers of different streams do not wait for one another, and their
commits (their fsyncs) overlap as plain INSERTs' do.

Positions and links come after commit, from the sequencer (`sequencer.py`,
`expensura_sequence`): it moves committed pending rows into `event_log` in staging order,
under the log's lock, a batch per transaction. That keeps the sequence gap-free (only
committed rows get numbers), the chain single-headed (one sequencer at a time links onto
the committed head) and the log's order equal to the order in which positions became
visible, so the outbox relay can follow the log by sequence without skipping a late commit.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Text,
    any_,
    bindparam,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.authenticity import EventSigner, RecordSignature
from expensura_events.chain import GENESIS, Verification, verify_links
from expensura_events.chain_segments import LINKS_BETWEEN, SegmentResult
from expensura_events.cipher import KeyCache
from expensura_events.envelope import EventEnvelope, utcnow
from expensura_events.mapper import EventMapper
from expensura_events.metrics import APPEND_LOCK_WAIT
from expensura_events.sequencer import APPENDED
from expensura_events.tables import event_log, event_log_pending, stream_versions
from expensura_events.tracing import tracer

# "EXPENSUR": one per database, taken by the sequencer (`expensura_sequence`, eventstore_0008),
# which spells it out as 4996832045164614994.
APPEND_LOCK = 0x45585045_4E535552 & 0x7FFFFFFFFFFFFFFF

_STAGE = text(
    "SELECT moved_stream, moved_version FROM expensura_stage("
    "CAST(:event_ids AS uuid[]), CAST(:stream_ids AS text[]), CAST(:versions AS integer[]),"
    " CAST(:event_types AS text[]), CAST(:subject_ids AS text[]),"
    " CAST(:recorded_at AS timestamptz), CAST(:records AS bytea[]),"
    " CAST(:signatures AS bytea[]), CAST(:key_ids AS text[]), CAST(:streams AS text[]),"
    " CAST(:bases AS integer[]), CAST(:tops AS integer[]))"
)


# Built once: every append reads it (an IN clause built per call was a tenth of an append's
# CPU, py-spy).
_STREAM_VERSIONS = select(stream_versions.c.stream_id, stream_versions.c.version).where(
    stream_versions.c.stream_id == any_(bindparam("streams", type_=ARRAY(Text)))
)


def _append_arguments(
    built: Sequence[tuple[EventEnvelope, bytes, RecordSignature]],
    streams: Sequence[str],
    bases: dict[str, int],
) -> dict[str, Any]:
    return {
        "event_ids": [e.event_id for e, _, _ in built],
        "stream_ids": [e.stream_id for e, _, _ in built],
        "versions": [e.stream_version for e, _, _ in built],
        "event_types": [e.event_type for e, _, _ in built],
        "subject_ids": [e.subject_id for e, _, _ in built],
        "recorded_at": built[0][0].recorded_at,
        "records": [r for _, r, _ in built],
        "signatures": [s.signature for _, _, s in built],
        "key_ids": [s.key_id for _, _, s in built],
        "streams": list(streams),
        "bases": [bases[s] for s in streams],
        "tops": [max(e.stream_version for e, _, _ in built if e.stream_id == s) for s in streams],
    }


ANY_VERSION = None


class StreamVersionConflict(Exception):
    """Someone else appended to the stream since the caller read it."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id}: expected version {expected}, found {actual}")
        self.stream_id, self.expected, self.actual = stream_id, expected, actual


@dataclass(frozen=True)
class StoredRecord:
    seq: int
    event_id: str
    event_type: str
    stream_id: str
    subject_id: str | None
    record: bytes
    hash: bytes
    signature: bytes | None = None
    signing_key_id: str | None = None


class EventSigningKeyMissing(RuntimeError):
    """The service has no event-signing key: it must not append what no one can verify."""


class EventStore:
    def __init__(
        self, mapper: EventMapper, signer: EventSigner | None = None, *, service: str | None = None
    ) -> None:
        self.mapper, self.signer = mapper, signer
        # `expensura_append_lock_wait_seconds` for this service; None: not observed.
        self._append_timer = None if service is None else APPEND_LOCK_WAIT.labels(service=service)

    async def append(
        self,
        conn: AsyncConnection,
        events: Sequence[EventEnvelope],
        expected_version: int | None = ANY_VERSION,
    ) -> list[EventEnvelope]:
        """Append events inside the caller's transaction (with its state change).

        `expected_version` is the stream's version the caller decided on (0: new stream);
        it applies to a single-stream batch. Stream versions are assigned here; positions
        in the log once the transaction commits (the sequencer), so the envelopes returned
        have none (`sequence` is None).
        """
        if not events:
            return []
        # The event store's hop of the request's trace (gateway → service → here → relay →
        # broker → projections): what was appended, by type and position, never a value.
        with tracer.start_as_current_span(
            "eventstore.append",
            attributes={
                "db.system": "postgresql",
                "expensura.event_types": sorted({e.event_type for e in events}),
                "expensura.events": len(events),
            },
        ):
            return await self._append(conn, events, expected_version)

    async def _append(
        self,
        conn: AsyncConnection,
        events: Sequence[EventEnvelope],
        expected_version: int | None,
    ) -> list[EventEnvelope]:
        if self.signer is None:
            raise EventSigningKeyMissing("EXPENSURA_EVENT_SIGNING_KEY is not set")
        streams = sorted({e.stream_id for e in events})
        if expected_version is not None and len(streams) != 1:
            raise ValueError("expected_version applies to a batch of one stream")
        # Everything costly happens before the staging call: key look-ups, encryption, the
        # records (built on the stream versions read now) and their signatures.
        owners = {o for e in events if (o := self.mapper.key_owner_needed(e)) is not None}
        keys = await self.mapper.cipher.keys.get_or_create_many(owners) if owners else None
        sealed = [await self.mapper.seal_payload(e, keys) for e in events]
        bases = await self._stream_versions(conn, streams)
        if expected_version is not None and bases[streams[0]] != expected_version:
            raise StreamVersionConflict(streams[0], expected_version, bases[streams[0]])
        recorded_at = utcnow()
        while True:
            built = self._build(events, sealed, bases, recorded_at)
            # The one statement that meets other writers (eventstore_0008,
            # `expensura_stage`): it locks this batch's streams' rows, checks that none moved
            # since `bases`, moves them and stages the records. Timed as a whole: under
            # contention it is the wait for another writer of the same stream.
            started = time.perf_counter()
            moved, at = (await conn.execute(_STAGE, _append_arguments(built, streams, bases))).one()
            if self._append_timer is not None:
                self._append_timer.observe(time.perf_counter() - started)
            if moved is None:
                conn.info[APPENDED] = True  # sequenced once committed (`LogEngine.begin`)
                return [e for e, _, _ in built]
            if expected_version is not None:
                raise StreamVersionConflict(moved, expected_version, at)
            # Another append moved a stream in between: this transaction now holds the rows
            # of the streams that exist (until commit), so the versions read again cannot
            # move before the retry, which therefore succeeds.
            bases = await self._stream_versions(conn, streams)

    def _build(
        self,
        events: Sequence[EventEnvelope],
        sealed: Sequence[dict[str, Any]],
        bases: dict[str, int],
        recorded_at: datetime,
    ) -> list[tuple[EventEnvelope, bytes, RecordSignature]]:
        assert self.signer is not None
        versions = dict(bases)
        built = []
        for envelope, payload in zip(events, sealed, strict=True):
            versions[envelope.stream_id] += 1
            final = envelope.model_copy(
                update={
                    "stream_version": versions[envelope.stream_id],
                    "recorded_at": recorded_at,
                }
            )
            record = self.mapper.to_record(final, payload)
            built.append((final, record, self.signer.sign(record)))
        return built

    @staticmethod
    async def _stream_versions(conn: AsyncConnection, streams: Sequence[str]) -> dict[str, int]:
        rows = await conn.execute(_STREAM_VERSIONS, {"streams": list(streams)})
        found = {r.stream_id: r.version for r in rows}
        return {s: found.get(s, 0) for s in streams}

    async def stream_version(self, conn: AsyncConnection, stream_id: str) -> int:
        return (await self._stream_versions(conn, [stream_id]))[stream_id]

    async def read_stream(self, conn: AsyncConnection, stream_id: str) -> list[EventEnvelope]:
        """The stream's events in order, its committed-but-unsequenced ones (and this
        transaction's own) included: they have a stream version, not yet a position."""
        return await self._read_where(conn, "stream_id", stream_id)

    async def read_subject(self, conn: AsyncConnection, subject_id: str) -> list[EventEnvelope]:
        """The subject's events, sequenced ones in log order, then pending ones in the order
        they were staged."""
        return await self._read_where(conn, "subject_id", subject_id)

    async def _read_where(
        self, conn: AsyncConnection, column: str, value: str
    ) -> list[EventEnvelope]:
        # One statement, one snapshot: a record the sequencer moves meanwhile is seen in
        # exactly one of the two tables.
        logged = select(
            event_log.c.seq,
            literal(0, BigInteger).label("staged"),
            event_log.c.stream_version,
            event_log.c.record,
        ).where(event_log.c[column] == value)
        pending = select(
            null().cast(BigInteger).label("seq"),
            event_log_pending.c.id.label("staged"),
            event_log_pending.c.stream_version,
            event_log_pending.c.record,
        ).where(event_log_pending.c[column] == value)
        both = union_all(logged, pending).subquery()
        order = (
            (both.c.stream_version,)
            if column == "stream_id"
            else (both.c.seq.asc().nulls_last(), both.c.staged)
        )
        rows = (await conn.execute(select(both.c.seq, both.c.record).order_by(*order))).all()
        keys: KeyCache = {}
        return [await self.mapper.from_record(r.record, r.seq, keys) for r in rows]

    @staticmethod
    async def read_records(
        conn: AsyncConnection, after_seq: int, limit: int, event_types: Sequence[str] = ()
    ) -> list[StoredRecord]:
        """The log as stored (ciphertext), in sequence order: the feed others follow.

        `event_types`: only records of these types (all when empty)."""
        query = (
            select(
                event_log.c.seq,
                event_log.c.event_id,
                event_log.c.event_type,
                event_log.c.stream_id,
                event_log.c.subject_id,
                event_log.c.record,
                event_log.c.hash,
                event_log.c.signature,
                event_log.c.signing_key_id,
            )
            .where(event_log.c.seq > after_seq)
            .order_by(event_log.c.seq)
            .limit(limit)
        )
        if event_types:
            query = query.where(event_log.c.event_type.in_(list(event_types)))
        rows = (await conn.execute(query)).all()
        return [
            StoredRecord(
                r.seq,
                str(r.event_id),
                r.event_type,
                r.stream_id,
                r.subject_id,
                r.record,
                r.hash,
                r.signature,
                r.signing_key_id,
            )
            for r in rows
        ]

    @staticmethod
    async def head(conn: AsyncConnection) -> tuple[int, bytes]:
        row = (
            await conn.execute(
                select(event_log.c.seq, event_log.c.hash).order_by(event_log.c.seq.desc()).limit(1)
            )
        ).one_or_none()
        return (row.seq, row.hash) if row else (0, GENESIS)

    @staticmethod
    async def hashes_at(conn: AsyncConnection, sequences: Iterable[int]) -> dict[int, bytes]:
        """The stored chain hash at each of `sequences` the log has."""
        wanted = sorted(set(sequences))
        if not wanted:
            return {}
        rows = await conn.execute(
            select(event_log.c.seq, event_log.c.hash).where(event_log.c.seq.in_(wanted))
        )
        return {r.seq: r.hash for r in rows}


NO_END = 2**63 - 1
# Below this many links one process is quicker than starting workers (about half a second
# each); above it the log is cut into segments verified in parallel (`chain_segments`).
PARALLEL_FROM = 200_000
SEGMENT_LINKS = 50_000  # at most, per worker task (progress advances a task at a time)


def verify_workers() -> int:
    """Worker processes for a parallel verification: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def verify_log(
    conn: AsyncConnection,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
    *,
    after: int = 0,
    upto: int = NO_END,
    workers: int | None = None,
) -> Verification:
    """Recompute the chain over the log (or the segment after `after` up to `upto`, from the
    stored hash at `after`); see `chain.verify_links`. Rows are read as plain tuples through
    the driver, a page at a time: at hundreds of thousands of links a second, building an
    object per row would be most of the cost.

    Over `PARALLEL_FROM` links or more, and with `workers` (default: the usable cores) above
    one, the range up to the head as it is now is cut into segments verified in worker
    processes, each from the stored hash it starts on; a segment holds only if it starts on
    the hash its predecessor ended on. The verdict is the one a single walk gives: from the
    first segment that does not hold, the chain is walked again in this process from the
    last link known good, to name the first broken link and its reason. Links appended
    meanwhile are verified after, in this process."""
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    prev = GENESIS
    if after:
        stored = await raw.fetchval("SELECT hash FROM event_log WHERE seq = $1", after)
        if stored is None:
            return Verification(0, after, GENESIS.hex(), after, f"sequence gap: no link {after}")
        prev = bytes(stored)
    seq, checked = after, 0
    workers = verify_workers() if workers is None else workers
    if workers > 1:
        head = int(await raw.fetchval("SELECT coalesce(max(seq), 0) FROM event_log"))
        stop = min(head, upto)
        if stop - after >= PARALLEL_FROM:
            dsn = conn.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            segments = await _verify_segments(dsn, after, stop, batch, workers, progress)
            for segment in segments:
                if segment.first_broken is not None or segment.start_hash != prev:
                    break  # walked again below, from the last link known good
                seq, prev, checked = segment.last_seq, segment.last_hash, checked + segment.checked
    return await _verify_from(raw, batch, progress, seq, prev, upto, checked)


async def _verify_segments(
    dsn: str,
    after: int,
    stop: int,
    batch: int,
    workers: int,
    progress: Callable[[int], None] | None,
) -> list[SegmentResult]:
    """The segments of (after, stop] verified by worker processes (`chain_segments`), each
    worker taking the next segment when it is done with one; in order, up to the first
    that did not hold or that no worker verified (a worker that failed: the caller walks
    the rest)."""
    count = max(workers, -(-(stop - after) // SEGMENT_LINKS))
    bounds = [after + (stop - after) * i // count for i in range(count + 1)]
    todo = collections.deque(itertools.pairwise(bounds))
    done: dict[int, SegmentResult] = {}

    async def worker() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "expensura_events.chain_segments",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(dsn.encode() + b"\n")
            while todo:
                a, b = todo.popleft()
                proc.stdin.write(f"{a} {b} {max(batch, 20_000)}\n".encode())
                await proc.stdin.drain()
                line = await proc.stdout.readline()
                if not line:
                    todo.clear()  # the worker died: the caller walks the rest
                    return
                result = done[a] = SegmentResult.from_line(line)
                if result.first_broken is not None:
                    todo.clear()  # everything after it is walked again anyway
                elif progress is not None:
                    progress(result.checked)
        finally:
            proc.stdin.close()
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()

    await asyncio.gather(*(worker() for _ in range(min(workers, count))))
    ordered = []
    for a, _ in itertools.pairwise(bounds):
        if a not in done:
            break
        ordered.append(done[a])
    return ordered


async def _verify_from(
    raw: Any,
    batch: int,
    progress: Callable[[int], None] | None,
    seq: int,
    prev: bytes,
    upto: int,
    checked: int,
) -> Verification:
    """Walk the links after `seq` (whose hash is `prev`) up to `upto`, in this process."""
    while seq < upto:
        page = await raw.fetch(LINKS_BETWEEN, seq, upto, batch)
        if not page:
            break
        done = verify_links(page, seq, prev)
        checked += done.checked
        if done.first_broken is not None:
            return Verification(
                checked, done.last_seq, done.last_hash.hex(), done.first_broken, done.reason
            )
        seq, prev = done.last_seq, done.last_hash
        if progress is not None:
            progress(done.checked)
    if upto != NO_END and seq < upto:
        return Verification(
            checked, seq, prev.hex(), seq + 1, f"sequence gap: expected {seq + 1}, found none"
        )
    return Verification(checked, seq, prev.hex())
