"""One typed settings object per service process, read once from the environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from expensura_events.kafka import KafkaSettings
from expensura_events.passwords import RFC9106_LOW_MEMORY
from expensura_events.topology import SERVICES


def _default_peers() -> dict[str, str]:
    return {s.name.value: f"http://127.0.0.1:{s.internal_port}" for s in SERVICES}


class ListenerSettings(BaseSettings):
    """Where `expensura serve` listens: the public listener (only the gateways reach it)
    and the internal one (other services, Prometheus) of the same app (web/listeners.py).
    Apart from the rest, so that they are read before the service's own settings."""

    model_config = SettingsConfigDict(env_prefix="EXPENSURA_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="0.0.0.0 in the cluster")
    port: int = Field(default=8080, ge=1, le=65535, description="the public listener")
    internal_port: int = Field(default=8081, ge=1, le=65535, description="the internal one")
    # Addresses whose X-Forwarded-For the public listener believes (the gateways'); "*" in
    # the cluster, where nothing but a gateway reaches that port.
    forwarded_allow_ips: str = "127.0.0.1"


class ServiceSettings(ListenerSettings):
    model_config = SettingsConfigDict(env_prefix="EXPENSURA_", extra="ignore")

    database_url: str = Field(description="the service's own database (its app role)")
    keystore_url: str = Field(description="the key store's database (local KMS)")
    master_key: str = Field(description="base64 of the 32-byte key-encryption key")
    # Without a signing key the service appends nothing (see authenticity.py); without public
    # keys its projections refuse every record: both fail closed.
    event_signing_key: str | None = Field(
        default=None, description="base64 of this service's 32-byte Ed25519 event-signing seed"
    )
    event_public_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description="service → base64 raw Ed25519 public keys its events may be signed with",
    )
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "EXPENSURA_KAFKA_BOOTSTRAP_SERVERS"
        )
    )
    topic_namespace: str = Field(default="", description="prefix of topics and consumer groups")
    workers: bool = Field(default=True, description="run the relay and projections in-process")
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    # Where peers answer: their internal listeners (`expensura serve`, web/listeners.py).
    service_urls: dict[str, str] = Field(default_factory=_default_peers)
    max_body_bytes: int = 1_000_000
    # Service identity (service_identity.py): this service's Ed25519 seed, and every
    # caller's published public keys. Absent keys fail closed: internal routes refuse all.
    service_key: str | None = Field(default=None, description="base64 Ed25519 seed")
    service_public_keys: dict[str, list[str]] = Field(default_factory=dict)
    # argon2id cost (RFC 9106 low-memory option by default); tests may lower it, never prod.
    password_hash_time_cost: int = Field(default=RFC9106_LOW_MEMORY["time_cost"], ge=1)
    password_hash_memory_kib: int = Field(default=RFC9106_LOW_MEMORY["memory_kib"], ge=8)
    password_hash_parallelism: int = Field(default=RFC9106_LOW_MEMORY["parallelism"], ge=1)
    password_hash_workers: int = Field(default=2, ge=1, description="argon2 threads")

    def kafka(self) -> KafkaSettings:
        return KafkaSettings(
            self.kafka_bootstrap_servers,
            session_timeout_ms=self.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.kafka_heartbeat_interval_ms,
            topic_namespace=self.topic_namespace,
        )
