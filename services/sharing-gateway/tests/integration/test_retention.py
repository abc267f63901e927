"""The gateway's retention worker on its database: used nonces are deleted once they can no
longer be replayed, fresh ones stay, and over a long run the table stays bounded."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import insert, select

from expensura_events.envelope import utcnow
from expensura_events.retention import Expiry, purge_expired, retention_worker
from expensura_events.runtime import ServiceRuntime
from expensura_sharing_gateway.app import service_definition
from expensura_sharing_gateway.partner_auth import store
from expensura_sharing_gateway.settings import gateway_settings
from expensura_sharing_gateway.tables import request_nonces


def _rules(rt: ServiceRuntime) -> list[Expiry]:
    assert service_definition.retention is not None  # the runtime starts its worker
    return list(service_definition.retention(rt.settings))


async def _nonces(rt: ServiceRuntime, partner: str) -> set[str]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(request_nonces.c.nonce).where(request_nonces.c.partner_id == partner)
        )
    return {r.nonce for r in rows}


async def test_only_nonces_past_their_retention_are_deleted_and_a_kept_one_still_refuses(
    rt: ServiceRuntime,
) -> None:
    partner = f"bureau-{uuid.uuid4().hex[:6]}"
    keep = timedelta(seconds=gateway_settings(rt).nonce_retention_seconds)
    now = utcnow()
    ages = {
        "expired": keep + timedelta(seconds=1),
        "long-expired": keep * 10,
        "fresh": timedelta(seconds=1),
        "in-the-replay-window": keep - timedelta(seconds=1),
    }
    async with rt.engine.begin() as conn:
        for label, age in ages.items():
            for i in range(300):
                assert await store.use_nonce(conn, partner, f"{label}-{i:04}", now - age)
    deleted = await purge_expired(rt.engine, _rules(rt), now, batch=250)  # several batches
    assert deleted["request_nonces"] >= 600
    left = await _nonces(rt, partner)
    assert left == {
        f"{label}-{i:04}" for label in ("fresh", "in-the-replay-window") for i in range(300)
    }
    async with rt.engine.begin() as conn:  # a kept nonce is still refused
        assert not await store.use_nonce(conn, partner, "in-the-replay-window-0000", now)
    await purge_expired(rt.engine, _rules(rt), now)  # a second run deletes nothing more
    assert await _nonces(rt, partner) == left


async def test_under_a_long_run_of_requests_the_nonce_table_stays_bounded(
    rt: ServiceRuntime,
) -> None:
    """Ten simulated hours at 20 requests a minute, the cleaner every ten minutes: the table
    never holds more than a retention's worth of requests plus one interval's, and levels
    off instead of growing with what was written."""
    partner = f"bureau-{uuid.uuid4().hex[:6]}"
    rules = _rules(rt)
    keep = rules[0].keep
    start = utcnow() - timedelta(hours=10)
    per_minute, interval = 20, 10
    bound = per_minute * (int(keep.total_seconds()) // 60 + interval)
    sizes: list[int] = []
    for minute in range(0, 600, interval):
        rows = [
            {
                "partner_id": partner,
                "nonce": f"n-{m:04}-{i:03}",
                "seen_at": start + timedelta(minutes=m),
            }
            for m in range(minute, minute + interval)
            for i in range(per_minute)
        ]
        async with rt.engine.begin() as conn:
            await conn.execute(insert(request_nonces), rows)  # as use_nonce does, in bulk
        await purge_expired(rt.engine, rules, start + timedelta(minutes=minute + interval))
        sizes.append(len(await _nonces(rt, partner)))
    assert max(sizes) <= bound, sizes
    steady = sizes[len(sizes) // 2 :]
    assert max(steady) - min(steady) <= per_minute * interval, steady  # level, not growing
    assert per_minute * 600 > 4 * bound  # far more were written than are kept


async def test_the_runtime_runs_the_retention_worker_until_the_service_stops(
    rt: ServiceRuntime,
) -> None:
    partner = f"bureau-{uuid.uuid4().hex[:6]}"
    old = utcnow() - timedelta(days=2)
    async with rt.engine.begin() as conn:
        await store.use_nonce(conn, partner, "old-nonce-0123456789", old)
    configured = rt.settings
    rt.settings = configured.model_copy(update={"retention_interval_seconds": 0.05})
    stop = asyncio.Event()
    assert service_definition.retention is not None
    worker = asyncio.create_task(retention_worker(service_definition.retention)(rt, stop))
    try:
        for _ in range(100):
            if not await _nonces(rt, partner):
                break
            await asyncio.sleep(0.05)
        assert await _nonces(rt, partner) == set()
    finally:
        stop.set()
        await asyncio.wait_for(worker, 5)
        rt.settings = configured
