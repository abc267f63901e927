"""One typed settings object per service process, read once from the environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from expensura_events.kafka import KafkaSettings
from expensura_events.notifications import SmtpRelay
from expensura_events.passwords import RFC9106_LOW_MEMORY
from expensura_events.topology import SERVICES, TOPIC_PARTITIONS


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
    # The gateways whose X-Forwarded-For the public listener believes (addresses or
    # networks, comma-separated); none by default: the peer is the client. web/proxies.py
    # turns it into uvicorn's options.
    forwarded_allow_ips: str | None = Field(
        default=None, description="trusted gateway addresses/networks, comma-separated"
    )


class ServiceSettings(ListenerSettings):
    model_config = SettingsConfigDict(env_prefix="EXPENSURA_", extra="ignore")

    database_url: str = Field(description="the service's own database (its app role)")
    keystore_url: str = Field(description="the key store's database (local KMS)")
    master_key: str = Field(description="base64 of the 32-byte master key (root of sub-keys)")
    # Set only while the master key is rotated (`expensura keys rotate-master`): keys still
    # wrapped by it stay readable, new ones are wrapped by `master_key`.
    previous_master_key: str | None = Field(
        default=None, description="base64 of the other master key accepted during a rotation"
    )
    # Without a signing key the service appends nothing (see authenticity.py); without public
    # keys its projections refuse every record: both fail closed.
    event_signing_key: str | None = Field(
        default=None, description="base64 of this service's 32-byte Ed25519 event-signing seed"
    )
    event_public_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description="service → base64 raw Ed25519 public keys its events may be signed with",
    )
    # How often the service signs and publishes its chain head, if the log moved
    # (witnessing.py); the other services witness it. A rewrite after the last witnessed
    # checkpoint is what `log verify` cannot see, so keep it short.
    checkpoint_interval_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="seconds between chain checkpoints"
    )
    # How often the relay asks the broker whether it lost the topic's data (relay.py). Each
    # check is a new client, whose first metadata request lists every topic of the broker:
    # cheap on a cluster's few topics, not free, so not every second.
    relay_broker_check_seconds: float = Field(
        default=5.0, gt=0, le=300, description="seconds between the relay's broker checks"
    )
    # How often expired working rows (nonces, throttle windows) are deleted (retention.py).
    retention_interval_seconds: float = Field(
        default=600.0, gt=0, le=86400, description="seconds between retention purges"
    )
    # How long a projection's inbox row is kept before the inbox floor passes it
    # (projections.py, `InboxRetention`): far longer than a consumer ever lags between the
    # partitions of one topic, and than a redelivery or a relay replay can come late.
    inbox_retention_seconds: int = Field(
        default=7 * 86400, ge=3600, le=365 * 86400, description="seconds an inbox row is kept"
    )
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "EXPENSURA_KAFKA_BOOTSTRAP_SERVERS"
        )
    )
    topic_namespace: str = Field(default="", description="prefix of topics and consumer groups")
    workers: bool = Field(default=True, description="run the relay and projections in-process")
    # Broker security (EXPENSURA_KAFKA_*): PLAINTEXT locally, SASL_SSL/SCRAM in a cluster.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_fetch_max_wait_ms: int = Field(
        default=10, ge=1, le=5_000, description="a consumer's fetch wait while events flow"
    )
    kafka_fetch_idle_wait_ms: int = Field(
        default=1_000, ge=1, le=5_000, description="its fetch wait when idle (kafka.FetchPace)"
    )
    kafka_topic_partitions: int = Field(
        default=TOPIC_PARTITIONS, ge=1, le=64, description="partitions of a topic created"
    )
    # Where peers answer: their internal listeners (`expensura serve`, web/listeners.py).
    service_urls: dict[str, str] = Field(default_factory=_default_peers)
    max_body_bytes: int = 1_000_000
    # The public API's per-client request rate (web/ratelimit.py): a token bucket per client
    # address the gateway names, refilled at this rate up to the burst; over it, 429.
    requests_per_client_per_second: float = Field(default=20.0, gt=0)
    request_burst_per_client: int = Field(default=100, ge=1)
    # Service identity (service_identity.py): this service's Ed25519 seed, and every
    # caller's published public keys. Absent keys fail closed: internal routes refuse all.
    service_key: str | None = Field(default=None, description="base64 Ed25519 seed")
    service_public_keys: dict[str, list[str]] = Field(default_factory=dict)
    # argon2id cost (RFC 9106 low-memory option by default); tests may lower it, never prod.
    password_hash_time_cost: int = Field(default=RFC9106_LOW_MEMORY["time_cost"], ge=1)
    password_hash_memory_kib: int = Field(default=RFC9106_LOW_MEMORY["memory_kib"], ge=8)
    password_hash_parallelism: int = Field(default=RFC9106_LOW_MEMORY["parallelism"], ge=1)
    password_hash_workers: int = Field(default=2, ge=1, description="argon2 threads")
    # Outgoing mail (notifications.py): the SMTP relay, and who the messages are from.
    # The default is the local sink `make run` starts (docs: README, "Ports").
    smtp_url: str = Field(
        default="smtp://127.0.0.1:8191", description="smtp://, smtp+starttls:// or smtps://"
    )
    mail_from: str = Field(default="Expensura <no-reply@expensura.invalid>", max_length=200)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_names_a_relay(cls, value: str) -> str:
        # Refused at start, not at the first sign-up (which would have saved the account).
        SmtpRelay.parse(value)
        return value

    def kafka(self) -> KafkaSettings:
        return KafkaSettings(
            self.kafka_bootstrap_servers,
            session_timeout_ms=self.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.kafka_heartbeat_interval_ms,
            fetch_max_wait_ms=self.kafka_fetch_max_wait_ms,
            fetch_idle_wait_ms=self.kafka_fetch_idle_wait_ms,
            topic_namespace=self.topic_namespace,
            topic_partitions=self.kafka_topic_partitions,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
        )
