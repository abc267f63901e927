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
