"""Provisioning: databases, roles, migrations and topics, then each service's environment.

Run by `expensura run` and by the tests. Idempotent: running it again only migrates.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path

from expensura_events.db import (
    KEYSTORE_VERSIONS,
    ensure_database,
    ensure_role,
    grant_keystore,
    grant_service_role,
    upgrade,
    with_database,
)
from expensura_events.kafka import KafkaSettings, ensure_topics
from expensura_events.service_identity import new_service_keys
from expensura_events.topology import KEYSTORE_DATABASE, SERVICES
from expensura_ops.services import service_definitions

DEV_ROLE_PASSWORD = "expensura-dev"  # local stack only; production sets EXPENSURA_DB_PASSWORD


def master_key_from(var_dir: Path) -> str:
    """EXPENSURA_MASTER_KEY, or a key generated once and kept in var/ (mode 600)."""
    if value := os.environ.get("EXPENSURA_MASTER_KEY"):
        return value
    path = var_dir / "master.key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(base64.b64encode(os.urandom(32)).decode())
    return path.read_text().strip()


async def provision(
    admin_url: str,
    bootstrap_servers: str,
    *,
    master_key: str,
    namespace: str = "",
    ports: Mapping[str, int] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Create and migrate every database, create the topics, return each service's env.

    `namespace` prefixes database names so several stacks (test runs) share one server.
    """
    password = os.environ.get("EXPENSURA_DB_PASSWORD", DEV_ROLE_PASSWORD)
    definitions = service_definitions()
    ports = {s.name.value: s.port for s in SERVICES} | dict(ports or {})
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    keystore_db = namespace + KEYSTORE_DATABASE
    await ensure_database(admin_url, keystore_db)
    await upgrade(with_database(admin_url, keystore_db), [KEYSTORE_VERSIONS])

    # Each service's identity key and everyone's public keys, new for this local stack (a
    # restart makes new ones: tokens live a minute, nothing else uses them). A deployment
    # gives them from its secrets instead (deploy/README.md).
    service_keys, service_public_keys = new_service_keys([s.name.value for s in SERVICES])
    env: dict[str, dict[str, str]] = {}
    for spec in SERVICES:
        definition = definitions[spec.name.value]
        database = namespace + spec.database
        await ensure_role(admin_url, spec.db_role, password)
        await ensure_database(admin_url, database)
        owner_url = with_database(admin_url, database)
        await upgrade(owner_url, definition.version_locations)
        await grant_service_role(owner_url, spec.db_role)
        await grant_keystore(with_database(admin_url, keystore_db), spec.db_role)
        env[spec.name.value] = {
            "EXPENSURA_DATABASE_URL": with_database(admin_url, database, spec.db_role, password),
            "EXPENSURA_KEYSTORE_URL": with_database(admin_url, keystore_db, spec.db_role, password),
            "EXPENSURA_MASTER_KEY": master_key,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "EXPENSURA_SERVICE_URLS": json.dumps(urls),
            "EXPENSURA_PORT": str(ports[spec.name.value]),
            "EXPENSURA_TOPIC_NAMESPACE": namespace,
            "EXPENSURA_SERVICE_KEY": service_keys[spec.name.value],
            "EXPENSURA_SERVICE_PUBLIC_KEYS": service_public_keys,
            **dict(extra_env or {}),
        }
    kafka = KafkaSettings(bootstrap_servers, topic_namespace=namespace)
    await ensure_topics(kafka, [kafka.topic(s.name) for s in SERVICES])
    return env
