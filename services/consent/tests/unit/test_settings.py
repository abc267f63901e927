"""Consent's typed settings: its own, with defaults, and only from its own class."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from expensura_consent.app import service_definition
from expensura_consent.settings import ConsentSettings, consent_settings
from expensura_events.contracts.decisions import RELEASE_WITHIN_SECONDS
from expensura_events.settings import ServiceSettings

BASE = {
    "database_url": "postgresql+asyncpg://x/y",
    "keystore_url": "postgresql+asyncpg://x/k",
    "master_key": "a2V5",
    "kafka_bootstrap_servers": "127.0.0.1:9092",
}


class Holder:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings


def test_consent_runs_with_its_settings_class_and_its_defaults() -> None:
    assert service_definition.settings_class is ConsentSettings
    settings = ConsentSettings.model_validate(BASE)
    assert consent_settings(Holder(settings)) is settings
    assert settings.worker_interval_seconds == 5.0 and settings.policy_notice_batch == 200


def test_the_worker_pace_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPENSURA_POLICY_NOTICE_BATCH", "7")
    assert ConsentSettings.model_validate(BASE).policy_notice_batch == 7
    with pytest.raises(TypeError, match="ConsentSettings"):
        consent_settings(Holder(ServiceSettings.model_validate(BASE)))


def test_decisions_are_kept_far_longer_than_their_grant_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A decision row must outlive the seconds its grant can be redeemed in by far: a
    retention under 60 windows is refused at start."""
    settings = ConsentSettings.model_validate(BASE)
    assert settings.decision_retention_seconds == 86400
    assert service_definition.retention is not None
    [rule] = service_definition.retention(settings)
    assert (rule.name, rule.column, rule.keep.total_seconds()) == ("decisions", "decided_at", 86400)
    floor = 60 * RELEASE_WITHIN_SECONDS
    assert ConsentSettings.model_validate(BASE | {"decision_retention_seconds": floor})
    for wrong in (0, RELEASE_WITHIN_SECONDS, floor - 1, 400 * 24 * 3600):
        with pytest.raises(ValidationError, match="decision_retention_seconds"):
            ConsentSettings.model_validate(BASE | {"decision_retention_seconds": wrong})
    monkeypatch.setenv("EXPENSURA_DECISION_RETENTION_SECONDS", "3600")
    assert ConsentSettings.model_validate(BASE).decision_retention_seconds == 3600
