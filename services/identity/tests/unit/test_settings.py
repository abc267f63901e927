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


def test_the_working_rows_retentions_default_and_are_bounded() -> None:
    """MFA challenges, refresh tokens and e-mail proofs are kept past their end by a
    retention within sane bounds (EXPENSURA_…_RETENTION_SECONDS)."""
    mine = _settings(IdentitySettings)
    assert isinstance(mine, IdentitySettings)
    assert mine.mfa_challenge_retention_seconds == 3600
    assert mine.refresh_token_retention_seconds == 86400
    assert mine.email_proof_retention_seconds == 86400
    for name in (
        "mfa_challenge_retention_seconds",
        "refresh_token_retention_seconds",
        "email_proof_retention_seconds",
    ):
        for wrong in (0, 59, 400 * 24 * 3600):
            with pytest.raises(ValidationError, match=name):
                mine.model_validate(mine.model_dump() | {name: wrong})


def test_the_retentions_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPENSURA_MFA_CHALLENGE_RETENTION_SECONDS", "600")
    monkeypatch.setenv("EXPENSURA_REFRESH_TOKEN_RETENTION_SECONDS", "7200")
    monkeypatch.setenv("EXPENSURA_EMAIL_PROOF_RETENTION_SECONDS", "3600")
    mine = _settings(IdentitySettings)
    assert isinstance(mine, IdentitySettings)
    assert mine.mfa_challenge_retention_seconds == 600
    assert mine.refresh_token_retention_seconds == 7200
    assert mine.email_proof_retention_seconds == 3600
