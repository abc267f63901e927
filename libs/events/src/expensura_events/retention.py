"""Retention of working rows: the tables that only stop a replay or count attempts (nonces,
throttle windows) grow with every request, so each service declares which of its rows have
expired and a worker deletes them.

A service declares `ServiceDefinition.retention`: from its settings, one `Expiry` per table
(the timestamp column and how long a row is kept after it). The runtime runs
`retention_worker` every `retention_interval_seconds`; `expensura retention purge` runs the
same purge once. Deletes go in batches, each its own short transaction, so a large backlog
never holds long locks on a table requests write to.

Every service also purges its projection inbox (`projections.InboxRetention`: the inbox
makes an effect happen once, so its rule keeps a floor instead of forgetting). Never declare
here a table that is evidence (the log, disclosures); consent's decisions are declared only
past their grant window, what a disclosure rested on being in the caller's event:
docs/operations.md, "Retention of working rows".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.db_errors import error_fields
from expensura_events.envelope import utcnow

log = structlog.get_logger("expensura.retention")
BATCH = 5000


class Rule(Protocol):
    """Something the retention purge deletes: `Expiry` for a plain table, or a rule of its
    own (the projection inbox: projections.py, `InboxRetention`)."""

    @property
    def name(self) -> str: ...

    async def purge(self, engine: AsyncEngine, now: datetime, batch: int) -> int:
        """Delete what has expired at `now`, `batch` rows per transaction; rows deleted."""
        ...


@dataclass(frozen=True)
class Expiry:
    """Rows of `table` whose `column` is more than `keep` ago have expired."""

    table: Table
    column: str
    keep: timedelta

    @property
    def name(self) -> str:
        return self.table.name

    def cutoff(self, now: datetime) -> datetime:
        return now - self.keep

    async def purge(self, engine: AsyncEngine, now: datetime, batch: int) -> int:
        column = self.table.c[self.column]
        key = list(self.table.primary_key.columns)
        deleted = 0
        while True:
            # A batch by primary key: rows a request writes meanwhile are not expired, and a
            # row deleted twice (two processes of the service) is simply not counted twice.
            doomed = select(*key).where(column < self.cutoff(now)).limit(batch)
            async with engine.begin() as conn:
                if len(key) == 1:
                    where = key[0].in_(doomed.scalar_subquery())
                else:
                    where = tuple_(*key).in_(doomed)
                # The cutoff again in the delete itself: a row a request renewed since the
                # subquery read it (a new window, a new code) is re-checked and kept.
                gone = (
                    await conn.execute(delete(self.table).where(where, column < self.cutoff(now)))
                ).rowcount
            deleted += gone
            if gone < batch:
                return deleted


RetentionRules = Callable[[Any], Sequence[Rule]]
"""A service's expiries, from its settings."""


async def purge_expired(
    engine: AsyncEngine, rules: Sequence[Rule], now: datetime | None = None, batch: int = BATCH
) -> dict[str, int]:
    """Delete every expired row; returns the rows deleted per table."""
    now = now or utcnow()
    return {rule.name: await rule.purge(engine, now, batch) for rule in rules}


def retention_worker(rules: RetentionRules) -> Any:
    """The runtime's worker for a service's expiries (a loop until the service stops)."""

    async def retention(rt: Any, stop: asyncio.Event) -> None:
        interval = float(rt.settings.retention_interval_seconds)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                return
            try:
                deleted = await purge_expired(rt.engine, rules(rt.settings))
            except Exception as exc:  # the database is away: try again next time
                log.warning("retention.failed", service=rt.name, **error_fields(exc))
                continue
            if any(deleted.values()):
                log.info("retention.purged", service=rt.name, **deleted)

    return retention
