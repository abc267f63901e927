"""Per-client request rate limits of the public API: 429 with `Retry-After`.

The gateways (Caddy) have no rate limiter in their stock build (docs/architecture.md,
"Rate limits live in the services"), so each service limits the clients the gateway names:
a token bucket per client address, `requests_per_client_per_second` refilled up to
`request_burst_per_client`. Only requests that reached the public listener through a
trusted gateway are limited (`ThroughGateway` marks them before uvicorn believes
X-Forwarded-For): in the cluster nothing else reaches that port (NetworkPolicies), and
locally the tools and tests that call a service directly are not the app's clients.

The buckets are the process's memory, as NGINX's `limit_req` zones are a worker's: the limit
holds per replica, so a client of N replicas gets up to N times the rate. That is what a
request-rate limit is for (one client cannot starve the others); a volumetric limit is the
load balancer's. The sign-in throttle, which must hold across replicas and restarts, is
rows in identity's database (SEC-2).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from expensura_events.web.problems import problem_response

# The scope key ThroughGateway sets: the TCP peer was one of the trusted gateways.
VIA_GATEWAY = "expensura.via_gateway"


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst: int


def client_key(address: str) -> str:
    """The bucket of a client address: the address itself, or its /64 for IPv6, where one
    subscriber holds a whole /64 and could otherwise rotate through it."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class ClientBuckets:
    """Token buckets by client key, at most `capacity` of them: when more clients are
    seen, the one seen longest ago is forgotten (it had the most time to refill anyway)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        # key → (tokens, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, limit: RateLimit, now: float) -> float:
        """Spend one token of `key`'s bucket: 0.0 if there was one, else the seconds until
        there will be (and nothing is spent)."""
        tokens, then = self._buckets.pop(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + max(0.0, now - then) * limit.per_second)
        if tokens >= 1.0:
            self._remember(key, (tokens - 1.0, now))
            return 0.0
        self._remember(key, (tokens, now))
        return (1.0 - tokens) / limit.per_second

    def _remember(self, key: str, bucket: tuple[float, float]) -> None:
        self._buckets[key] = bucket
        while len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


class PerClientRateLimit:
    """ASGI middleware: a client over its limit gets 429 problem+json with `Retry-After`
    (whole seconds, rounded up) before the app runs; nothing else happens."""

    def __init__(
        self,
        app: ASGIApp,
        limit: Callable[[], RateLimit],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.limit, self.clock = app, limit, clock
        self.buckets = ClientBuckets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or not scope.get(VIA_GATEWAY) or not client:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_key(client[0]), self.limit(), self.clock())
        if wait > 0.0:
            retry_after = max(1, math.ceil(wait))
            await problem_response(
                429,
                "Too many requests",
                f"This client is over its request rate; retry in {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ThroughGateway:
    """Marks a request whose TCP peer is a trusted gateway (VIA_GATEWAY), seen before
    uvicorn's proxy-headers middleware replaces the peer with the forwarded client."""

    def __init__(self, app: ASGIApp, gateways: Sequence[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(g, strict=False) for g in gateways]

    def _trusted(self, peer: str) -> bool:
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            scope[VIA_GATEWAY] = peer is not None and self._trusted(peer[0])
        await self.app(scope, receive, send)
