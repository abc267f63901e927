"""Only the configured gateway may tell a service who its client is (issue 11, item 3)."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn

from expensura_events.settings import ServiceSettings
from expensura_events.web.proxies import (
    UntrustworthyProxySetting,
    uvicorn_proxy_args,
    uvicorn_proxy_options,
)


def _settings(forwarded: str | None) -> ServiceSettings:
    return ServiceSettings(
        database_url="postgresql+asyncpg://x/y",
        keystore_url="postgresql+asyncpg://x/k",
        master_key="bWFzdGVy",
        kafka_bootstrap_servers="127.0.0.1:9092",
        forwarded_allow_ips=forwarded,
    )


async def _client_seen(options: dict[str, Any], peer: str, forwarded: str) -> str:
    """The client address an app sees when `peer` sends X-Forwarded-For: `forwarded`,
    through uvicorn configured with `options`."""
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    config = uvicorn.Config(app, **options)
    config.load()
    scope = {
        "type": "http",
        "scheme": "http",
        "client": (peer, 40000),
        "headers": [(b"x-forwarded-for", forwarded.encode())],
    }
    await config.loaded_app(scope, None, None)
    return seen[0]


async def test_by_default_no_peer_not_even_loopback_can_name_the_client() -> None:
    options = uvicorn_proxy_options(_settings(None))
    assert options == {"proxy_headers": False, "forwarded_allow_ips": ""}
    assert await _client_seen(options, "127.0.0.1", "198.51.100.9") == "127.0.0.1"
    assert uvicorn_proxy_args(_settings(None)) == ["--no-proxy-headers"]


async def test_the_configured_gateway_and_only_it_names_the_client() -> None:
    options = uvicorn_proxy_options(_settings(" 10.0.0.5, 10.1.0.0/16 "))
    assert options["forwarded_allow_ips"] == "10.0.0.5,10.1.0.0/16"
    assert await _client_seen(options, "10.0.0.5", "198.51.100.9") == "198.51.100.9"
    assert await _client_seen(options, "10.1.2.3", "198.51.100.9") == "198.51.100.9"
    # anyone else, loopback included, is the client itself whatever it claims
    assert await _client_seen(options, "127.0.0.1", "198.51.100.9") == "127.0.0.1"
    assert await _client_seen(options, "10.0.0.6", "198.51.100.9") == "10.0.0.6"
    assert uvicorn_proxy_args(_settings("10.0.0.5")) == [
        "--proxy-headers",
        "--forwarded-allow-ips",
        "10.0.0.5",
    ]


@pytest.mark.parametrize("setting", ["*", "gateway.local", "10.0.0.5,*"])
def test_a_wildcard_or_a_name_is_refused(setting: str) -> None:
    with pytest.raises(UntrustworthyProxySetting):
        uvicorn_proxy_options(_settings(setting))
