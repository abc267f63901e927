"""Events a projection could not apply: parked, announced, and left to an operator.

A projection applies each event in a savepoint of its batch. When one fails in a way that
retrying cannot fix (a value the read model cannot store, a bug in `apply`), that event
alone is rolled back and recorded here, and the batch goes on: one bad event never stops a
read model for everyone else. Its inbox row is rolled back with it, so the event is not
"applied" and a later retry can apply it.

Statuses:
- `parked`: failed, waiting for an operator;
- `retried`: an operator retried it and it failed again (still waiting);
- `skipped`: an operator decided it will never apply (with a reason); its inbox row is
  written so that redeliveries and rebuilds pass over it;
- `resolved`: applied after all (an operator's retry, a redelivery or a rebuild after a fix).

A row holds ids, types, class names and SQLSTATE codes: never a value from the event nor
from the statement that failed (see `db_errors.error_summary`). The `projection.dead_lettered`
warning carries the same and nothing more.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import ARRAY, Uuid, cast, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from expensura_events.authenticity import RejectedEvent
from expensura_events.db_errors import error_summary, is_transient, root_class, sqlstate
from expensura_events.envelope import utcnow
from expensura_events.tables import projection_dead_letters as dl
from expensura_events.tables import projection_inbox

log = structlog.get_logger("expensura.projections")

PARKED, RETRIED, SKIPPED, RESOLVED = "parked", "retried", "skipped", "resolved"
OPEN = (PARKED, RETRIED)
STATUSES = (PARKED, RETRIED, SKIPPED, RESOLVED)


@dataclass(frozen=True)
class Delivery:
    """One stored record on its way into a projection, with what is known about it."""

    source: str
    event_id: str
    record: bytes
    seq: int | None = None
    event_type: str | None = None
    # The appending service's signature over `record` and its key id (authenticity.py);
    # `event_id` is what the carrier claimed until the record is verified.
    signature: bytes | None = None
    key_id: str | None = None
    # When the source recorded it: from the verified record only (the inbox floor's measure).
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    projection: str
    event_id: str
    source: str
    seq: int | None
    event_type: str | None
    subject_id: str | None
    error_class: str
    error: str
    first_failed_at: datetime
    last_failed_at: datetime
    attempts: int
    status: str
    resolved_by: str | None
    resolved_at: datetime | None
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _header(record: bytes) -> dict[str, Any]:
    """The envelope's clear-text header (ids and types), without decrypting anything."""
    try:
        data = json.loads(record)
    except (ValueError, RecursionError):  # a refused record may be anything
        return {}
    return data if isinstance(data, dict) else {}


async def park(
    conn: AsyncConnection, projection: str, delivery: Delivery, exc: BaseException
) -> DeadLetter:
    """Record (or count again) a failure to apply `delivery`, in the caller's transaction."""
    header = _header(delivery.record)
    now = utcnow()
    subject = header.get("subject_id")
    event_type = delivery.event_type or header.get("event_type")
    values = {
        "projection": projection,
        "event_id": delivery.event_id,
        "source": delivery.source,
        "seq": delivery.seq,
        "event_type": event_type if isinstance(event_type, str) else None,
        "subject_id": subject if isinstance(subject, str) else None,
        "error_class": root_class(exc),
        "error": _summary(exc),
        "first_failed_at": now,
        "last_failed_at": now,
        "attempts": 1,
        "status": PARKED,
    }
    stmt = insert(dl).values(**values)
    row = (
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["projection", "event_id"],
                set_={
                    "seq": func.coalesce(stmt.excluded.seq, dl.c.seq),
                    "error_class": stmt.excluded.error_class,
                    "error": stmt.excluded.error,
                    "last_failed_at": stmt.excluded.last_failed_at,
                    "attempts": dl.c.attempts + 1,
                    # A resolved event that fails again (a rebuild after a regression) is
                    # open again; an operator's retry keeps its `retried` mark.
                    "status": func.coalesce(
                        func.nullif(dl.c.status, RESOLVED), stmt.excluded.status
                    ),
                    "resolved_by": None,
                    "resolved_at": None,
                },
            ).returning(*dl.c)
        )
    ).one()
    return _dead_letter(row)


def _summary(exc: BaseException) -> str:
    """A refused record says why (a reason code and fixed text: no value of the record)."""
    if isinstance(exc, RejectedEvent):
        return f"RejectedEvent: {exc}"
    return error_summary(exc)


def announce(letter: DeadLetter, exc: BaseException | None = None) -> None:
    """The alert: ids, types and class names only."""
    log.warning(
        "projection.dead_lettered",
        projection=letter.projection,
        event_id=letter.event_id,
        source=letter.source,
        seq=letter.seq,
        event_type=letter.event_type,
        error=letter.error_class,
        sqlstate=sqlstate(exc) if exc is not None else None,
        rejected=exc.reason if isinstance(exc, RejectedEvent) else None,
        attempts=letter.attempts,
        status=letter.status,
    )


async def resolve_applied(
    conn: AsyncConnection, projection: str, event_ids: Sequence[str], by: str
) -> None:
    """Events that applied now are no longer open dead letters (one statement per batch)."""
    if not event_ids:
        return
    # One array parameter, not an IN list: one statement text for every batch size, so the
    # driver prepares it once (an IN list of each new length was parsed and planned anew).
    await conn.execute(
        update(dl)
        .where(
            dl.c.projection == projection,
            dl.c.event_id == func.any(cast(list(event_ids), ARRAY(Uuid))),
            dl.c.status.in_(OPEN),
        )
        .values(status=RESOLVED, resolved_by=by, resolved_at=utcnow())
    )


async def mark_retried(
    conn: AsyncConnection, projection: str, event_id: str, exc: BaseException
) -> None:
    await conn.execute(
        update(dl)
        .where(dl.c.projection == projection, dl.c.event_id == event_id)
        .values(
            status=RETRIED,
            attempts=dl.c.attempts + 1,
            last_failed_at=utcnow(),
            error_class=root_class(exc),
            error=_summary(exc),
        )
    )


async def skip(
    conn: AsyncConnection, projection: str, event_id: str, reason: str, by: str
) -> DeadLetter | None:
    """Mark a dead letter skipped for good. Its inbox row is written as well, so a
    redelivery (or a rebuild) passes over it instead of parking it again."""
    row = (
        await conn.execute(
            update(dl)
            .where(dl.c.projection == projection, dl.c.event_id == event_id)
            .values(status=SKIPPED, reason=reason, resolved_by=by, resolved_at=utcnow())
            .returning(*dl.c)
        )
    ).one_or_none()
    if row is None:
        return None
    await conn.execute(
        insert(projection_inbox)
        .values(projection=projection, event_id=event_id, source=row.source, applied_at=utcnow())
        .on_conflict_do_nothing()
    )
    return _dead_letter(row)


async def find(
    conn: AsyncConnection,
    *,
    projection: str | None = None,
    event_id: str | None = None,
    statuses: Sequence[str] | None = None,
) -> list[DeadLetter]:
    query = select(dl).order_by(dl.c.first_failed_at, dl.c.projection)
    if projection is not None:
        query = query.where(dl.c.projection == projection)
    if event_id is not None:
        query = query.where(dl.c.event_id == event_id)
    if statuses is not None:
        query = query.where(dl.c.status.in_(statuses))
    return [_dead_letter(r) for r in await conn.execute(query)]


async def open_dead_letters(engine: AsyncEngine) -> dict[str, int] | None:
    """Open (parked or retried) dead letters per projection; None if the database is
    unavailable (status pages must answer during an outage)."""
    try:
        async with asyncio.timeout(2), engine.connect() as conn:
            rows = await conn.execute(
                select(dl.c.projection, func.count())
                .where(dl.c.status.in_(OPEN))
                .group_by(dl.c.projection)
            )
            return {r[0]: int(r[1]) for r in rows}
    except Exception as exc:
        if not is_transient(exc):
            raise
        return None


def _dead_letter(row: Any) -> DeadLetter:
    values = {k: row._mapping[k] for k in DeadLetter.__dataclass_fields__}
    return DeadLetter(**values | {"event_id": str(values["event_id"])})
