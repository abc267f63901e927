"""The five services, where they listen, and the names derived from them.

Declared once here so that the local stack, the services and the command line agree on
database names, topics and ports without reading each other's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ServiceName(StrEnum):
    IDENTITY = "identity"
    CONSENT = "consent"
    LOANS = "loans"
    SHARING_GATEWAY = "sharing-gateway"
    INCIDENT = "incident"


@dataclass(frozen=True)
class ServiceSpec:
    name: ServiceName
    port: int  # the public listener
    module: str  # importable package of the service

    @property
    def internal_port(self) -> int:
        """The internal listener (`/internal/*`, what peers read), beside the public one."""
        return self.port + INTERNAL_PORT_OFFSET

    @property
    def database(self) -> str:
        """Default PostgreSQL database owned by the service."""
        return "expensura_" + self.name.replace("-", "_")

    @property
    def db_role(self) -> str:
        """The role the service connects as: may INSERT/SELECT its log, never UPDATE/DELETE."""
        return self.database + "_app"

    @property
    def asgi_app(self) -> str:
        return f"{self.module}.app:app"

    @property
    def topic(self) -> str:
        return events_topic(self.name)

    @property
    def env_prefix(self) -> str:
        return self.name.replace("-", "_").upper() + "_"


def events_topic(service: str, namespace: str = "") -> str:
    """One Kafka topic per source service. A namespace lets several stacks share a cluster."""
    return f"{namespace}expensura.{service}.events"


def topic_source(topic: str) -> str:
    """The source service of a topic named by `events_topic`."""
    return topic.rsplit(".", 2)[-2]


INTERNAL_PORT_OFFSET = 100  # the local stack's internal ports: 8201…8205

TOPIC_PARTITIONS = 8  # fixed at creation: Tansu cannot add partitions later

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(ServiceName.IDENTITY, 8101, "expensura_identity"),
    ServiceSpec(ServiceName.CONSENT, 8102, "expensura_consent"),
    ServiceSpec(ServiceName.LOANS, 8103, "expensura_loans"),
    ServiceSpec(ServiceName.SHARING_GATEWAY, 8104, "expensura_sharing_gateway"),
    ServiceSpec(ServiceName.INCIDENT, 8105, "expensura_incident"),
)

KEYSTORE_DATABASE = "expensura_keystore"


def service(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in SERVICES)}")
