"""Use cases of statistics (RUL-3): a release (its rows counted, small cells withheld, the
ledger row and its event in one transaction) and the ledger. k is checked here, by the
domain, whoever calls: the HTTP edge's 422 is only the first check."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_sharing_gateway.statistics import store
from expensura_sharing_gateway.statistics.domain import (
    Release,
    check_k,
    columns_of,
    release,
    released,
    statistics_stream,
)


async def release_statistics(rt: ServiceRuntime, query: str, k: int, by: Actor) -> Release:
    columns, k = columns_of(query), check_k(k)
    async with rt.engine.begin() as conn:
        made = release(uuid4(), query, k, await store.disclosed(conn, columns))
        await store.add_release(conn, made, by.id, utcnow())
        await rt.append(
            conn,
            [
                rt.envelope(
                    released(made),
                    stream_id=statistics_stream(made.release_id),
                    subject_id=None,
                    actor=by,
                    purpose=Purpose.LEGAL_COMPLIANCE,
                )
            ],
        )
    return made


async def ledger(rt: ServiceRuntime) -> list[dict[str, Any]]:
    """Every release, its query, parameters and threshold, oldest first."""
    async with rt.engine.connect() as conn:
        return await store.ledger(conn)
