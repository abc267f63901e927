"""Checkpoints and witnesses at work: the checkpoint worker, the `chain-witness` projection,
and what `expensura log verify` gathers from the peers' logs (rules: `checkpoints.py`).

- Every service runs `checkpoint_worker`: every `EXPENSURA_CHECKPOINT_INTERVAL_SECONDS` it
  appends `platform.ChainCheckpoint` (its head's sequence and hash, and the time) to its own
  log, if the log moved since its last checkpoint. The record is signed at append and
  published on the service's topic like any other.
- Every service runs the `chain-witness` projection over the other services' topics. The
  runner verifies each record's signature first; for each checkpoint, the projection appends
  `platform.CheckpointWitnessed` to its own log, in the inbox's transaction (once).

No feedback loop: the worker does not count checkpoints and witness records as movement
(`CHAIN_EVIDENCE_TYPES`), and the projection witnesses checkpoints only, never witness
records. A checkpoint is thus caused only by a business record; it is witnessed once by
each peer; and those witness records cause nothing further. A witness record appended
after a service's last checkpoint stays unanchored until its next business record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.authenticity import EventVerifier, RejectedEvent
from expensura_events.catalog.platform import ChainCheckpoint, CheckpointWitnessed
from expensura_events.checkpoints import (
    CHAIN_CHECKPOINT,
    CHAIN_EVIDENCE_TYPES,
    Witnessed,
    WitnessReport,
    compare,
)
from expensura_events.db_errors import error_fields
from expensura_events.envelope import Actor, EventEnvelope, utcnow
from expensura_events.obligations import enforces
from expensura_events.privacy.ports import ServiceLog
from expensura_events.projections import LocalLogFeed, LogFeed, Projection
from expensura_events.service_identity import ServiceKeyMissing
from expensura_events.store import EventStore, StreamVersionConflict
from expensura_events.streams import CHECKPOINT_STREAM, witness_stream
from expensura_events.tables import event_log
from expensura_events.topology import SERVICES
from expensura_events.vocabulary import Purpose

log = structlog.get_logger("expensura.checkpoints")

WITNESS = "chain-witness"


async def _moved_since_checkpoint(conn: AsyncConnection) -> bool:
    """True if the log holds a business record the last checkpoint does not cover. Counted
    from the sequence it covers, not from its own place: a record appended between its
    read of the head and its append lies before it in the log, yet is not covered."""
    last = (
        await conn.execute(
            select(event_log.c.record)
            .where(event_log.c.stream_id == CHECKPOINT_STREAM)
            .order_by(event_log.c.stream_version.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    covered = int(json.loads(last)["payload"]["sequence"]) if last is not None else 0
    business = await conn.execute(
        select(event_log.c.seq)
        .where(
            event_log.c.seq > covered,
            event_log.c.event_type.not_in(CHAIN_EVIDENCE_TYPES),
        )
        .limit(1)
    )
    return business.first() is not None


@enforces("SEC-3")
async def checkpoint_once(rt: ServiceLog) -> EventEnvelope | None:
    """Append a checkpoint of the head if the log moved (see the module docstring)."""
    async with rt.engine.begin() as conn:
        version = await rt.store.stream_version(conn, CHECKPOINT_STREAM)
        if not await _moved_since_checkpoint(conn):
            return None
        # Read before the checkpoint is sequenced: records sequenced in between leave this
        # (sequence, hash) pair as true of the history as it was when read.
        sequence, head = await EventStore.head(conn)
        [recorded] = await rt.append(
            conn,
            [
                rt.envelope(
                    ChainCheckpoint(sequence=sequence, head_hash=head.hex(), at=utcnow()),
                    stream_id=CHECKPOINT_STREAM,
                    subject_id=None,
                    actor=Actor.system(rt.name),
                    purpose=Purpose.SECURITY,
                )
            ],
            expected_version=version,  # another process of this service checkpointed first
        )
    return recorded


async def checkpoint_worker(rt: Any, stop: asyncio.Event) -> None:
    """Checkpoint every `checkpoint_interval_seconds` while the service runs: the first one
    an interval after start, as every later one (a start is not a reason to checkpoint)."""
    interval = float(rt.settings.checkpoint_interval_seconds)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        try:
            await checkpoint_once(rt)
        except StreamVersionConflict:
            pass  # another process of the service checkpointed this head
        except Exception as exc:  # the database is away: try again next time
            log.warning("checkpoint.failed", service=rt.name, **error_fields(exc))


@enforces("SEC-3")
class ChainWitness(Projection):
    """Records each peer's verified checkpoint in this service's log (module docstring)."""

    name = WITNESS
    sources: ClassVar[tuple[str, ...]] = ()  # set per service by `chain_witness`
    tables = ()  # its output is the log itself
    event_types = frozenset({CHAIN_CHECKPOINT})  # never witness records: no loop
    follows_erased_subjects = True  # checkpoints name no subject; nothing to skip

    def bind(self, runtime: Any) -> None:
        self.rt: ServiceLog = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        payload = event.payload
        if not isinstance(payload, ChainCheckpoint) or event.source == self.rt.name:
            return
        stream = witness_stream(event.source, event.event_id)
        if await self.rt.store.stream_version(conn, stream) > 0:
            return  # witnessed before (a rebuild replays every checkpoint)
        await self.rt.append(
            conn,
            [
                self.rt.envelope(
                    CheckpointWitnessed(
                        source=event.source,
                        sequence=payload.sequence,
                        head_hash=payload.head_hash,
                        at=payload.at,
                        checkpoint_event_id=event.event_id,
                    ),
                    stream_id=stream,
                    subject_id=None,
                    actor=Actor.system(self.rt.name),
                    purpose=Purpose.SECURITY,
                    correlation_id=event.correlation_id,
                    causation_id=event.event_id,
                )
            ],
            expected_version=0,
        )


def chain_witness(service: str) -> ChainWitness:
    """The witness projection of `service`: it follows every other service's topic."""

    class Witness(ChainWitness):
        sources = tuple(s.name.value for s in SERVICES if s.name.value != service)

    return Witness()


# --- what `expensura log verify` gathers ------------------------------------------------------


@dataclass
class Gathered:
    witnessed: list[Witnessed] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # peer → why
    refused: dict[str, int] = field(default_factory=dict)  # peer → records failing verification


async def own_checkpoints(engine: AsyncEngine, service: str, batch: int = 2000) -> list[Witnessed]:
    """The service's own checkpoints, as claims about its chain (a careless rewrite that
    left them as they were shows even without a peer)."""
    feed = LocalLogFeed(engine, service, (CHAIN_CHECKPOINT,))
    out, after = [], 0
    while records := await feed.read(after, batch):
        for r in records:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                cp = ChainCheckpoint.model_validate(json.loads(r.record)["payload"])
                out.append(Witnessed(f"{service} itself", cp.sequence, cp.head_hash))
        after = records[-1].seq
    return out


async def witnessed_by(
    feed: LogFeed, verifier: EventVerifier, service: str, into: Gathered, batch: int = 2000
) -> None:
    """What peer `feed.source` witnessed of `service`'s chain, from its signed records only:
    a record the peer did not sign is counted as refused, never used as evidence."""
    after = 0
    while records := await feed.read(after, batch):
        for r in records:
            try:
                data = verifier.verify(feed.source, r.record, r.signature, r.signing_key_id)
                if data.get("event_type") != CheckpointWitnessed.event_type:
                    continue
                seen = CheckpointWitnessed.model_validate(data["payload"])
            except (RejectedEvent, ValidationError):
                into.refused[feed.source] = into.refused.get(feed.source, 0) + 1
                continue
            if seen.source == service:
                into.witnessed.append(Witnessed(feed.source, seen.sequence, seen.head_hash))
        after = records[-1].seq


@enforces("SEC-3")
async def check_witnesses(
    engine: AsyncEngine, verifier: EventVerifier, service: str, peers: Sequence[LogFeed]
) -> tuple[WitnessReport, Gathered]:
    """Compare `service`'s chain (in `engine`) with its own checkpoints and with what each
    peer's log feed says it witnessed. A peer that cannot be read is listed, not fatal."""
    gathered = Gathered(witnessed=await own_checkpoints(engine, service))
    for feed in peers:
        try:
            await witnessed_by(feed, verifier, service, gathered)
        except (httpx.HTTPError, ServiceKeyMissing, ValueError) as exc:
            gathered.unreachable[feed.source] = type(exc).__name__
    async with engine.connect() as conn:
        head_seq, _ = await EventStore.head(conn)
        hashes = await EventStore.hashes_at(conn, (w.sequence for w in gathered.witnessed))
    report = compare({s: h.hex() for s, h in hashes.items()}, head_seq, gathered.witnessed)
    return report, gathered
