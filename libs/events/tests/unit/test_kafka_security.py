"""Broker security options: what a cluster's clients connect with, refused when incomplete."""

from __future__ import annotations

import ssl

import pytest

from expensura_events.kafka import KafkaSettings
from expensura_events.settings import ServiceSettings

BASE = {
    "database_url": "postgresql+asyncpg://x/y",
    "keystore_url": "postgresql+asyncpg://x/k",
    "master_key": "a" * 44,
    "kafka_bootstrap_servers": "kafka:9093",
}


def test_the_local_broker_is_plaintext_with_nothing_else() -> None:
    assert KafkaSettings("127.0.0.1:9092").connection() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_a_cluster_connects_with_scram_over_tls_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "EXPENSURA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EXPENSURA_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "EXPENSURA_KAFKA_SASL_USERNAME": "identity",
        "EXPENSURA_KAFKA_SASL_PASSWORD": "s3cret",
    }.items():
        monkeypatch.setenv(name, value)
    options = ServiceSettings(**BASE).kafka().connection()  # type: ignore[arg-type]
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SCRAM-SHA-512",
        "identity",
    )
    assert options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode is ssl.CERT_REQUIRED  # the broker must prove itself


@pytest.mark.parametrize(
    "settings",
    [
        {"security_protocol": "TLS"},
        {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "GSSAPI",
            "sasl_username": "u",
            "sasl_password": "p",
        },
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "u"},
        {"security_protocol": "SASL_PLAINTEXT"},
    ],
)
def test_incomplete_or_unknown_security_is_refused_at_start(settings: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        KafkaSettings("kafka:9093", **settings)  # type: ignore[arg-type]
