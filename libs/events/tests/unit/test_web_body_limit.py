"""The app factory refuses bodies over the service's configured limit (settings.max_body_bytes)
with a problem+json 413, before the route reads them. In process: no server, no database."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel

from expensura_events.runtime import ServiceDefinition
from expensura_events.settings import ServiceSettings
from expensura_events.topology import service
from expensura_events.web import app as web_app

router = APIRouter()


class Echo(BaseModel):
    text: str


@router.post("/echo")
async def echo(body: Echo) -> Echo:
    return body


def settings(max_body_bytes: int) -> ServiceSettings:
    # Engines connect lazily: nothing here is reached unless a route uses the database.
    return ServiceSettings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        keystore_url="postgresql://nobody@127.0.0.1:1/none",
        master_key=base64.b64encode(os.urandom(32)).decode(),
        kafka_bootstrap_servers="127.0.0.1:1",
        workers=False,
        max_body_bytes=max_body_bytes,
    )


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(web_app, "configure_tracing", lambda name: None)  # no global provider
    definition = ServiceDefinition(
        spec=service("identity"), description="body limit test", routers=[router]
    )
    app = web_app.create_app(definition, settings_factory=lambda: settings(max_body_bytes=64))
    with TestClient(app) as c:
        yield c


def test_a_body_within_the_configured_limit_reaches_the_route(client: TestClient) -> None:
    resp = client.post("/echo", json={"text": "x" * 20})
    assert resp.status_code == 200 and resp.json() == {"text": "x" * 20}


def test_a_body_over_the_configured_limit_is_refused_with_413(client: TestClient) -> None:
    resp = client.post("/echo", json={"text": "x" * 100})
    assert resp.status_code == 413
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["detail"] == "Bodies are limited to 64 bytes."


def test_a_streamed_body_without_a_length_is_counted(client: TestClient) -> None:
    chunks = iter([b'{"text": "', b"x" * 100, b'"}'])
    resp = client.post("/echo", content=chunks, headers={"content-type": "application/json"})
    assert resp.status_code == 413
