"""Identity's settings are reached through one typed accessor."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from expensura_events.settings import ServiceSettings
from expensura_identity.settings import IdentitySettings, identity_settings


def _settings(cls: type[ServiceSettings]) -> ServiceSettings:
    return cls(
        database_url="postgresql+asyncpg://x/y",
        keystore_url="postgresql+asyncpg://x/k",
        master_key="bWFzdGVy",
        kafka_bootstrap_servers="127.0.0.1:9092",
    )


def test_the_accessor_gives_identitys_settings_and_refuses_any_other() -> None:
    mine = _settings(IdentitySettings)
    assert identity_settings(SimpleNamespace(settings=mine)) is mine
    assert identity_settings(SimpleNamespace(settings=mine)).sign_in_failures_allowed == 5
    with pytest.raises(TypeError, match="IdentitySettings"):
        identity_settings(SimpleNamespace(settings=_settings(ServiceSettings)))


def test_a_throttle_row_is_kept_at_least_its_window() -> None:
    """A row deleted inside its window would forget the failures it counts."""
    mine = _settings(IdentitySettings)
    assert isinstance(mine, IdentitySettings)
    assert mine.sign_in_throttle_retention_seconds >= mine.sign_in_window_seconds
    with pytest.raises(ValidationError, match="sign_in_window_seconds"):
        mine.model_validate(mine.model_dump() | {"sign_in_throttle_retention_seconds": 899})
