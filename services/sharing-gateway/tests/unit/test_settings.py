"""The gateway's settings are reached through one typed accessor, with the defaults the API
documents (five-minute tokens and replay window)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from expensura_events.settings import ServiceSettings
from expensura_sharing_gateway.settings import GatewaySettings, gateway_settings

BASE = {
    "database_url": "postgresql+asyncpg://x/y",
    "keystore_url": "postgresql+asyncpg://x/k",
    "master_key": "bWFzdGVy",
    "kafka_bootstrap_servers": "127.0.0.1:9092",
}


def test_the_accessor_gives_the_gateways_settings_and_refuses_any_other() -> None:
    mine = GatewaySettings(**BASE)  # type: ignore[arg-type]
    assert gateway_settings(SimpleNamespace(settings=mine)) is mine
    assert mine.partner_token_ttl_seconds == 300 and mine.request_clock_skew_seconds == 300
    with pytest.raises(TypeError, match="GatewaySettings"):
        gateway_settings(SimpleNamespace(settings=ServiceSettings(**BASE)))  # type: ignore[arg-type]


def test_a_token_lifetime_of_hours_is_refused() -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(**BASE, partner_token_ttl_seconds=86400)  # type: ignore[arg-type]


def test_nonces_are_kept_at_least_two_replay_windows() -> None:
    """A request is fresh up to one skew after it was signed, and it may be signed up to one
    skew after it was first seen: a shorter retention would let its nonce be used again."""
    assert GatewaySettings(**BASE).nonce_retention_seconds >= 2 * 300  # type: ignore[arg-type]
    GatewaySettings(**BASE, request_clock_skew_seconds=3600)  # type: ignore[arg-type]
    GatewaySettings(**BASE, nonce_retention_seconds=600)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="twice"):
        GatewaySettings(**BASE, nonce_retention_seconds=599)  # type: ignore[arg-type]
