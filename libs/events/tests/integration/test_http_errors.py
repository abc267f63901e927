"""The HTTP edge under failures, through a real uvicorn server and one kept-alive connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import structlog
import uvicorn
from fastapi import APIRouter, Request
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)

from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service
from expensura_events.web.app import create_app
from expensura_ops.testing.stack import free_port

SECRET = "secret.person@example.com"
router = APIRouter(prefix="/test")  # test-only routes: no production service has them


@router.get("/client")
async def client_port(request: Request) -> dict[str, int]:
    assert request.client is not None
    return {"port": request.client.port}


@router.get("/bug")
async def bug() -> None:
    raise RuntimeError(f"a bug that mentions {SECRET}")


def _wrapped(driver_error: Exception) -> Exception:
    dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, driver_error)
    except Exception as adapted:
        return sa_exc.DBAPIError.instance(
            "INSERT INTO t VALUES ($1)", (SECRET,), adapted, dbapi.Error, hide_parameters=True
        )
    raise AssertionError("not translated")


@router.get("/starting-up")
async def starting_up() -> None:
    raise _wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up"))


@router.get("/pool-exhausted")
async def pool_exhausted() -> None:
    raise sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached")


@router.get("/data-error")
async def data_error() -> None:
    raise _wrapped(asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence"))


@pytest.fixture
async def server() -> AsyncIterator[str]:
    definition = ServiceDefinition(
        spec=service(ServiceName.LOANS), description="test app", routers=[router]
    )
    app = create_app(definition)
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="info")
    )
    task = asyncio.create_task(srv.serve())
    while not srv.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await task


async def test_an_unhandled_error_is_a_500_problem_and_the_connection_stays_usable(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    async with httpx.AsyncClient(base_url=server) as client:
        port = (await client.get("/test/client")).json()["port"]
        with structlog.testing.capture_logs() as logs:
            resp = await client.get("/test/bug")
        assert resp.status_code == 500
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["status"] == 500
        assert resp.headers.get("connection") != "close"
        after = await client.get("/test/client")
        assert after.status_code == 200
        # the same TCP connection: the server did not drop it after the error
        assert after.json()["port"] == port
    assert [e for e in logs if e["event"] == "unhandled"] == [
        {"event": "unhandled", "log_level": "error", "path": "/test/bug", "error": "RuntimeError"}
    ]
    assert SECRET not in resp.text + repr(logs) + caplog.text
    assert "Exception in ASGI application" not in caplog.text


@pytest.mark.parametrize("path", ["/test/starting-up", "/test/pool-exhausted"])
async def test_a_database_that_is_not_serving_is_a_503_with_retry_after(
    server: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        port = (await client.get("/test/client")).json()["port"]
        resp = await client.get(path)
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"].isdigit()
        assert resp.headers["content-type"] == "application/problem+json"
        assert (await client.get("/test/client")).json()["port"] == port


async def test_a_data_error_is_a_500_that_names_no_value(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        with structlog.testing.capture_logs() as logs:
            resp = await client.get("/test/data-error")
    assert resp.status_code == 500
    assert SECRET not in resp.text + repr(logs)
    assert {"cause": "CharacterNotInRepertoireError", "sqlstate": "22021"}.items() <= next(
        e for e in logs if e["event"] == "unhandled"
    ).items()
