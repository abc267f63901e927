"""The public API's per-client request rate limit (web/ratelimit.py): a token bucket per
client the gateway names; over it, 429 with Retry-After before the app runs."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from expensura_events.web.proxies import behind_gateways
from expensura_events.web.ratelimit import (
    ClientBuckets,
    PerClientRateLimit,
    RateLimit,
    client_key,
)

TWO_PER_SECOND = RateLimit(per_second=2.0, burst=3)


def test_a_client_gets_its_burst_then_waits_for_the_refill() -> None:
    buckets = ClientBuckets()
    assert [buckets.take("a", TWO_PER_SECOND, 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", TWO_PER_SECOND, 100.0) == pytest.approx(0.5)
    # a refused request spends nothing: after the half second it said, one token is back
    assert buckets.take("a", TWO_PER_SECOND, 100.5) == 0.0
    assert buckets.take("a", TWO_PER_SECOND, 100.5) == pytest.approx(0.5)
    # a long pause refills up to the burst, not beyond it
    assert [buckets.take("a", TWO_PER_SECOND, 1_000.0) for _ in range(4)][-1] > 0


def test_one_client_over_its_limit_does_not_limit_another() -> None:
    buckets = ClientBuckets()
    for _ in range(3):
        buckets.take("a", TWO_PER_SECOND, 0.0)
    assert buckets.take("a", TWO_PER_SECOND, 0.0) > 0
    assert buckets.take("b", TWO_PER_SECOND, 0.0) == 0.0


def test_an_ipv6_client_is_limited_by_its_slash_64_and_a_mapped_ipv4_as_the_ipv4() -> None:
    assert (
        client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("203.0.113.7") == "203.0.113.7"


def test_the_table_of_buckets_is_bounded_and_forgets_the_client_seen_longest_ago() -> None:
    buckets = ClientBuckets(capacity=2)
    for key in ("a", "b", "c"):
        buckets.take(key, TWO_PER_SECOND, 0.0)
    assert len(buckets) == 2
    for _ in range(2):
        buckets.take("b", TWO_PER_SECOND, 0.0)
    assert buckets.take("b", TWO_PER_SECOND, 0.0) > 0  # "b" was kept, with its spending


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _limited_app(clock: Clock, reached: list[str]) -> PerClientRateLimit:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["client"][0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return PerClientRateLimit(app, limit=lambda: RateLimit(per_second=0.25, burst=2), clock=clock)


def _client(gateways: str, reached: list[str], clock: Clock) -> httpx.AsyncClient:
    options = {"proxy_headers": True, "forwarded_allow_ips": gateways}
    # httpx's ASGI transport is a peer at 127.0.0.1: the gateway, when that is trusted
    transport = httpx.ASGITransport(behind_gateways(_limited_app(clock, reached), options))
    return httpx.AsyncClient(transport=transport, base_url="http://service")


async def test_a_client_named_by_the_gateway_over_its_rate_gets_429_with_retry_after() -> None:
    reached: list[str] = []
    clock = Clock()
    async with _client("127.0.0.1", reached, clock) as client:
        first = {"X-Forwarded-For": "203.0.113.7"}
        answers = [(await client.get("/v1/things", headers=first)) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["status"] == 429
        assert refused.headers["Retry-After"] == "4"  # one token at 0.25/s, whole seconds
        assert reached == ["203.0.113.7", "203.0.113.7"]  # the refused one never ran
        # another client behind the same gateway is not held back by the first
        other = await client.get("/v1/things", headers={"X-Forwarded-For": "198.51.100.2"})
        assert other.status_code == 200
        clock.now += 4  # and the first may go on once it waited what it was told
        assert (await client.get("/v1/things", headers=first)).status_code == 200


async def test_a_caller_that_is_not_a_gateway_is_not_limited_and_cannot_name_a_client() -> None:
    reached: list[str] = []
    async with _client("10.0.0.0/8", reached, Clock()) as client:
        for _ in range(5):
            resp = await client.get("/v1/things", headers={"X-Forwarded-For": "203.0.113.7"})
            assert resp.status_code == 200
    assert set(reached) == {"127.0.0.1"}  # its header was not believed either
