"""`expensura serve`'s two listeners (expensura_ops.serve): one app instance behind both
ports, its lifespan run once around them, `/internal/*` only on the internal port and the
public API only on the public one. Real sockets, a small app, no database."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from expensura_events.settings import ListenerSettings
from expensura_events.web.proxies import uvicorn_proxy_options
from expensura_events.web.ratelimit import PerClientRateLimit, RateLimit
from expensura_ops.serve import Listening, bind, serve_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _app(lifespans: list[str]) -> Starlette:
    async def answer(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.app.state.instance} {request.url.path}")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        lifespans.append("started")
        app.state.instance = f"app-{len(lifespans)}"
        yield
        lifespans.append("stopped")

    paths = ["/internal/log", "/v1/things", "/healthz", "/v1/me/data"]
    return Starlette(routes=[Route(p, answer) for p in paths], lifespan=lifespan)


async def test_one_app_two_listeners_one_lifespan() -> None:
    lifespans: list[str] = []
    public, internal = _free_port(), _free_port()
    stopping = asyncio.Event()
    where = Listening("127.0.0.1", public, internal, access_log=False)
    serving = asyncio.create_task(serve_app(_app(lifespans), where, stopping=stopping))
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(100):
            try:
                await client.get(f"http://127.0.0.1:{internal}/healthz")
                await client.get(f"http://127.0.0.1:{public}/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)

        async def get(port: int, path: str) -> httpx.Response:
            return await client.get(f"http://127.0.0.1:{port}{path}")

        assert (await get(internal, "/internal/log")).text == "app-1 /internal/log"
        refused = await get(public, "/internal/log")
        assert refused.status_code == 404
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await get(public, "/v1/things")).text == "app-1 /v1/things"
        assert (await get(internal, "/v1/things")).status_code == 404
        for port in (public, internal):  # shared paths, the same instance behind both
            assert (await get(port, "/v1/me/data")).text == "app-1 /v1/me/data"
    assert lifespans == ["started"]
    stopping.set()
    assert await asyncio.wait_for(serving, 15) == 0
    assert lifespans == ["started", "stopped"]


async def test_a_port_in_use_fails_before_the_app_starts() -> None:
    lifespans: list[str] = []
    taken = bind("127.0.0.1", _free_port())
    taken.listen()
    try:
        port = taken.getsockname()[1]
        where = Listening("127.0.0.1", _free_port(), port, access_log=False)
        with pytest.raises(OSError):
            await serve_app(_app(lifespans), where)
    finally:
        taken.close()
    assert lifespans == []


async def test_the_public_listener_limits_the_clients_a_gateway_names_and_only_those() -> None:
    # The gateway dials from 127.0.0.2 (as under `make run`); a local tool from 127.0.0.1.
    try:
        bind("127.0.0.2", 0).close()
    except OSError:
        pytest.skip("no 127.0.0.2 on this machine (macOS without an lo0 alias)")
    lifespans: list[str] = []
    public, internal = _free_port(), _free_port()
    stopping = asyncio.Event()
    app = PerClientRateLimit(_app(lifespans), limit=lambda: RateLimit(per_second=0.5, burst=3))
    options = uvicorn_proxy_options(_trusting("127.0.0.2"))
    where = Listening("127.0.0.1", public, internal, proxy_options=options, access_log=False)
    serving = asyncio.create_task(serve_app(app, where, stopping=stopping))
    gateway = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    url = f"http://127.0.0.1:{public}/v1/things"
    async with httpx.AsyncClient(transport=gateway, timeout=5) as via_gateway:
        for _ in range(100):
            try:
                await via_gateway.get(f"http://127.0.0.1:{internal}/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        client = {"X-Forwarded-For": "203.0.113.7"}
        answers = [(await via_gateway.get(url, headers=client)).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        refused = await via_gateway.get(url, headers=client)
        assert refused.headers["Retry-After"] == "2"
        assert refused.headers["content-type"] == "application/problem+json"
        other = await via_gateway.get(url, headers={"X-Forwarded-For": "198.51.100.2"})
        assert other.status_code == 200
        # the internal listener (peers, Prometheus) is never limited by a forwarded client
        inside = f"http://127.0.0.1:{internal}/internal/log"
        assert {(await via_gateway.get(inside, headers=client)).status_code for _ in range(5)} == {
            200
        }
    async with httpx.AsyncClient(timeout=5) as direct:  # not a gateway: not limited
        assert {(await direct.get(url, headers=client)).status_code for _ in range(5)} == {200}
    stopping.set()
    assert await asyncio.wait_for(serving, 15) == 0


def _trusting(gateways: str) -> ListenerSettings:
    return ListenerSettings(forwarded_allow_ips=gateways)
