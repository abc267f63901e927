"""Identity's health check while users sign in (SEC-2's argon2id off the event loop).

One client probes GET /healthz at a steady pace, first with the process otherwise idle (the
baseline), then while other clients sign in as fast as identity answers, with the production
argon2id parameters (not the tests' cheap ones). If hashing ran on the event loop, every probe
would wait behind whole hashes and the ratio would be many times 1; run in identity's bounded
thread pool, it stays near 1 apart from the CPU the hashes take from a small machine.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from expensura_ops.testing.stack import CHEAP_HASHING, LocalStack

PASSWORD = "correct horse battery staple"
PROBE_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Probe:
    probes: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class SignInResult:
    concurrency: int
    idle: Probe  # /healthz with nothing else running
    busy: Probe  # /healthz while sign-ins run
    sign_ins: int
    sign_ins_per_second: float
    sign_in_p50_ms: float
    refused: int  # sign-ins answered other than 200 (503: the hashing pool was saturated)


def _probe_stats(latencies: list[float]) -> Probe:
    q = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else latencies * 99
    )
    return Probe(len(latencies), q[49], q[98], max(latencies))


async def _probe(client: httpx.AsyncClient, stop: asyncio.Event) -> Probe:
    """GET /healthz every PROBE_INTERVAL_S (one at a time) until `stop` is set."""
    latencies: list[float] = []
    while not stop.is_set():
        t = time.perf_counter()
        (await client.get("/healthz")).raise_for_status()
        latencies.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(PROBE_INTERVAL_S)
    return _probe_stats(latencies)


async def measure_sign_ins(
    stack: LocalStack,
    *,
    seconds: float,
    concurrency: int = 8,
    say: Callable[[str], None],
) -> SignInResult:
    # Production hashing cost: the point is what a real hash does to the rest of the process.
    for knob in CHEAP_HASHING:
        stack.env["identity"].pop(knob, None)
    identity = stack.start("identity")
    say(f"sign-ins: {concurrency} accounts, argon2id at production cost")
    emails = [f"bench-{uuid.uuid4().hex[:10]}@example.com" for _ in range(concurrency)]
    async with httpx.AsyncClient(base_url=identity.url, timeout=60) as client:
        for email in emails:
            resp = await client.post("/v1/accounts", json={"email": email, "password": PASSWORD})
            resp.raise_for_status()

        async def timed_probe() -> Probe:
            stop = asyncio.Event()
            task = asyncio.create_task(_probe(client, stop))
            await asyncio.sleep(seconds)
            stop.set()
            return await task

        say(f"sign-ins: /healthz alone for {seconds:.0f} s, then with {concurrency} signing in")
        idle = await timed_probe()

        latencies: list[float] = []
        refused = 0
        stop = asyncio.Event()

        async def sign_in(email: str) -> None:
            nonlocal refused
            async with httpx.AsyncClient(base_url=identity.url, timeout=60) as own:
                while not stop.is_set():
                    t = time.perf_counter()
                    resp = await own.post(
                        "/v1/sessions", json={"email": email, "password": PASSWORD}
                    )
                    if resp.status_code == 200:
                        latencies.append((time.perf_counter() - t) * 1000)
                    else:
                        refused += 1

        started = time.perf_counter()
        signers = [asyncio.create_task(sign_in(email)) for email in emails]
        await asyncio.sleep(1.0)  # the pool is busy before the probe starts
        busy = await timed_probe()
        stop.set()
        await asyncio.gather(*signers)
        elapsed = time.perf_counter() - started
    stack.stop_all()
    return SignInResult(
        concurrency=concurrency,
        idle=idle,
        busy=busy,
        sign_ins=len(latencies),
        sign_ins_per_second=len(latencies) / elapsed,
        sign_in_p50_ms=statistics.median(latencies) if latencies else float("nan"),
        refused=refused,
    )
