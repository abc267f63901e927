"""Consent decision latency under load (RGT-4): POST /internal/decisions against the real
consent process, with a baseline of GET /healthz on the same process in the same run (the
HTTP floor), so the ratio shows what deciding costs on top of answering at all.

Two load generators: this process's httpx client (always), and wrk (`bench/native.py`) when
installed: as fast as answered for the throughput ratio, then paced at 1,000 decisions/s for
the latency target. The Python client saturates before a uvicorn process does, so only
wrk's figures say what the service can do."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bench import native
from expensura_consent.policy.service import INITIAL_VERSION
from expensura_ops.testing import tokens
from expensura_ops.testing.stack import LocalStack


@dataclass(frozen=True)
class LoadResult:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class NativeDecisions:
    """wrk's figures: the floor and the decisions as fast as answered, then paced."""

    healthz: native.WrkResult
    decisions: native.WrkResult
    paced: native.WrkResult
    target_rate: float

    @property
    def throughput_ratio(self) -> float:
        return self.decisions.per_second / self.healthz.per_second


@dataclass(frozen=True)
class DecisionResult:
    concurrency: int
    subjects: int
    decisions: LoadResult
    baseline: LoadResult
    allowed_share: float
    native: NativeDecisions | None = None  # None: wrk is not installed


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def _load(
    call: Callable[[httpx.AsyncClient, int], Awaitable[None]],
    base_url: str,
    concurrency: int,
    seconds: float,
) -> LoadResult:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def worker(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                await call(client, i)
                latencies.append((time.perf_counter() - t) * 1000)
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(
        len(latencies), len(latencies) / elapsed, _pct(latencies, 50), _pct(latencies, 99)
    )


async def measure_decisions(
    stack: LocalStack,
    *,
    seconds: float,
    concurrency: int = 16,
    subjects: int = 20,
    say: Callable[[str], None],
) -> DecisionResult:
    stack.start("identity")
    consent = stack.start("consent")
    say(f"decisions: {subjects} users, half with marketing consent")
    ids = []
    async with httpx.AsyncClient(base_url=consent.url, timeout=30) as setup:
        for n in range(subjects):
            subject, auth = tokens.user(stack)
            ids.append(subject)
            if n % 2 == 0:
                resp = await setup.post(
                    "/v1/me/consents",
                    headers=auth,
                    json={
                        "purpose": "marketing",
                        "categories": ["pd:Contact"],
                        "policy_version": INITIAL_VERSION,
                    },
                )
                resp.raise_for_status()
    allowed = 0

    async def decide(client: httpx.AsyncClient, i: int) -> None:
        nonlocal allowed
        resp = await client.post(
            "/internal/decisions",
            json={
                "subject_id": ids[i % subjects],
                "purpose": "marketing",
                "categories": ["pd:Contact"],
                "requester": "sharing-gateway",
            },
            headers=stack.service_headers("consent", caller="sharing-gateway"),
        )
        allowed += resp.json()["allowed"]

    async def health(client: httpx.AsyncClient, i: int) -> None:
        (await client.get("/healthz")).raise_for_status()

    await _load(decide, consent.internal_url, concurrency, 1.0)  # warm-up
    say(f"decisions: {concurrency} concurrent clients for {seconds:.0f} s, then the baseline")
    baseline = await _load(health, consent.internal_url, concurrency, seconds)
    allowed = 0
    decisions = await _load(decide, consent.internal_url, concurrency, seconds)
    measured = None
    if native.available():
        say(f"decisions under wrk: the floor, as fast as answered, then {PACED_RATE:,.0f}/s")
        measured = await asyncio.to_thread(
            _native,
            consent.internal_url,
            stack.service_headers("consent", caller="sharing-gateway"),
            ids,
            seconds,
            concurrency,
        )
    else:
        say("wrk is not installed (apt-get install wrk): the native figures are skipped")
    stack.stop_all()
    return DecisionResult(
        concurrency, subjects, decisions, baseline, allowed / max(decisions.requests, 1), measured
    )


PACED_RATE = 1000.0
_DECISION = (
    '{"subject_id": "%s", "purpose": "marketing", "categories": ["pd:Contact"],'
    ' "requester": "sharing-gateway"}'
)


def _native(
    url: str, headers: dict[str, str], subjects: list[str], seconds: float, connections: int
) -> NativeDecisions:
    post = {**headers, "Content-Type": "application/json"}

    def decisions(delay_ms: float, for_s: float) -> native.WrkResult:
        return native.run_wrk(
            url,
            "/internal/decisions",
            method="POST",
            headers=post,
            body_format=_DECISION,
            subjects=subjects,
            seconds=for_s,
            connections=connections,
            delay_ms=delay_ms,
        )

    healthz = native.run_wrk(url, "/healthz", seconds=seconds, connections=connections)
    fastest = decisions(0.0, seconds)
    probe_delay = connections * 1000.0 / PACED_RATE
    probe = decisions(probe_delay, 2.0)
    paced = decisions(native.paced_delay_ms(PACED_RATE, connections, probe), seconds)
    return NativeDecisions(healthz, fastest, paced, PACED_RATE)
