"""The two listeners of a service (web/listeners.py): the public one never serves
`/internal/*`, the internal one serves only what peers, probes and operators need, and a
path a listener does not serve is a problem+json 404 before the app runs. In process."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from expensura_events.web.listeners import Listener, listeners_of, only_on, serves

PUBLIC, INTERNAL = Listener.PUBLIC, Listener.INTERNAL


@pytest.mark.parametrize(
    "path",
    ["/internal/log", "/internal", "//internal/log", "/internal//workers", "/internal/x/y"],
)
def test_the_public_listener_never_serves_internal_routes(path: str) -> None:
    assert not serves(PUBLIC, path)
    assert serves(INTERNAL, path)


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/metrics"])
def test_documents_and_metrics_are_served_inside_only(path: str) -> None:
    assert listeners_of(path) == (INTERNAL,)


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/v1/me/data", "/.well-known/jwks.json", "/.well-known/x"]
)
def test_probes_keys_and_the_subject_export_are_served_on_both(path: str) -> None:
    assert listeners_of(path) == (PUBLIC, INTERNAL)


@pytest.mark.parametrize(
    "path",
    ["/v1/consents", "/v1/me", "/v1/me/data/x", "/oauth/token", "/", "/internals", "/v1/internal"],
)
def test_the_public_api_is_served_on_the_public_listener_only(path: str) -> None:
    assert listeners_of(path) == (PUBLIC,)


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every request 200 with its path: whatever reaches it was let through."""
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


async def _get(listener: Listener, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=only_on(listener, _app))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get(path)


async def test_a_path_the_listener_does_not_serve_is_a_problem_404_the_app_never_sees() -> None:
    refused = await _get(PUBLIC, "/internal/log")
    assert refused.status_code == 404
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json() == {"type": "about:blank", "title": "Not Found", "status": 404}
    assert (await _get(INTERNAL, "/v1/consents")).status_code == 404


async def test_a_path_the_listener_serves_reaches_the_app() -> None:
    assert (await _get(INTERNAL, "/internal/log")).text == "/internal/log"
    assert (await _get(PUBLIC, "/v1/consents")).text == "/v1/consents"
    assert (await _get(INTERNAL, "/.well-known/jwks.json")).status_code == 200


async def test_lifespan_passes_through_the_filter() -> None:
    sent: list[dict[str, str]] = []

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    await only_on(PUBLIC, _app)({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "lifespan.startup.complete"}]
