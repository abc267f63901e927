"""Provisioning: databases, roles, migrations and topics, then each service's environment.

Run by `expensura run` and by the tests. Idempotent: running it again only migrates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from expensura_events.db import (
    KEYSTORE_VERSIONS,
    drop_database,
    ensure_database,
    ensure_role,
    grant_key_readers,
    grant_keystore,
    grant_service_role,
    upgrade,
    with_database,
)
from expensura_events.ed25519 import KeyPair
from expensura_events.kafka import KafkaSettings, ensure_topics
from expensura_events.service_identity import new_service_keys
from expensura_events.topology import KEYSTORE_DATABASE, SERVICES, TOPIC_PARTITIONS
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


def new_event_signing_keys() -> dict[str, str]:
    """One fresh Ed25519 event-signing seed (base64) per service."""
    return {s.name.value: KeyPair.new().private for s in SERVICES}


def event_public_keys(signing_keys: Mapping[str, str]) -> dict[str, list[str]]:
    """What EXPENSURA_EVENT_PUBLIC_KEYS publishes for these seeds (one key per service)."""
    return {service: [KeyPair.of(seed).public] for service, seed in signing_keys.items()}


def event_signing_keys_from(var_dir: Path) -> dict[str, str]:
    """The local stack's event-signing seeds, generated once and kept in var/ (mode 600):
    records signed in an earlier run must still verify when read models are rebuilt."""
    path = var_dir / "event-signing-keys.json"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(new_event_signing_keys()))
    keys: dict[str, str] = json.loads(path.read_text())
    missing = {s.name.value for s in SERVICES} - set(keys)
    if missing:  # a service added since: give it a key, keep the others
        keys |= {n: k for n, k in new_event_signing_keys().items() if n in missing}
        path.write_text(json.dumps(keys))
    return keys


# The erasure path: identity's rights service shreds a subject, and `expensura subject
# shred | release-hold` run as identity. No other service's role may destroy a key, so
# compromising one of them cannot erase anyone.
KEY_DESTROYERS = frozenset({"identity"})


async def _migrated_database(
    admin_url: str, database: str, versions: list[Path], templates: str | None
) -> None:
    """The database, created and migrated to the heads; as a copy of the migrated template
    `templates + name` when a template prefix is given (the template is made on first use)."""
    if templates is None:
        await ensure_database(admin_url, database)
        await upgrade(with_database(admin_url, database), versions)
        return
    template = templates + _template_name(versions)
    if await ensure_database(admin_url, template):
        try:
            await upgrade(with_database(admin_url, template), versions)
        except BaseException:
            await drop_database(admin_url, template)  # never copy a half-migrated one
            raise
    await ensure_database(admin_url, database, template=template)


def _template_name(versions: list[Path]) -> str:
    """One template per set of migration directories (a service's, or the key store's)."""
    return hashlib.sha256(" ".join(map(str, versions)).encode()).hexdigest()[:12]


async def provision(
    admin_url: str,
    bootstrap_servers: str,
    *,
    master_key: str,
    event_signing_keys: Mapping[str, str] | None = None,
    namespace: str = "",
    ports: Mapping[str, int] | None = None,
    internal_ports: Mapping[str, int] | None = None,
    extra_env: Mapping[str, str] | None = None,
    templates: str | None = None,
    topic_partitions: int = TOPIC_PARTITIONS,
) -> dict[str, dict[str, str]]:
    """Create and migrate every database, create the topics, return each service's env.

    `namespace` prefixes database names so several stacks (test runs) share one server.
    `event_signing_keys` (service → base64 Ed25519 seed) are generated when not given; each
    service gets its own seed and every service the public keys of all. `ports` and
    `internal_ports` are each service's two listeners (`expensura serve`); peers are called
    on the internal one.

    `templates` (the tests, which provision a stack per test): a prefix under which each
    database is migrated once, as a template; every stack's database is then a copy of it,
    and only the grants are run again. Migrating is most of what provisioning costs.
    """
    signing_keys = dict(event_signing_keys or new_event_signing_keys())
    public_keys = json.dumps(event_public_keys(signing_keys))
    password = os.environ.get("EXPENSURA_DB_PASSWORD", DEV_ROLE_PASSWORD)
    definitions = service_definitions()
    ports = {s.name.value: s.port for s in SERVICES} | dict(ports or {})
    internal = {s.name.value: s.internal_port for s in SERVICES} | dict(internal_ports or {})
    urls = {s.name.value: f"http://127.0.0.1:{internal[s.name.value]}" for s in SERVICES}

    keystore_db = namespace + KEYSTORE_DATABASE
    await _migrated_database(admin_url, keystore_db, [KEYSTORE_VERSIONS], templates)

    # Each service's identity key and everyone's public keys, new for this local stack (a
    # restart makes new ones: tokens live a minute, nothing else uses them). A deployment
    # gives them from its secrets instead (deploy/README.md).
    service_keys, service_public_keys = new_service_keys([s.name.value for s in SERVICES])
    env: dict[str, dict[str, str]] = {}
    for spec in SERVICES:
        definition = definitions[spec.name.value]
        database = namespace + spec.database
        await ensure_role(admin_url, spec.db_role, password)
        await _migrated_database(admin_url, database, definition.version_locations, templates)
        owner_url = with_database(admin_url, database)
        await grant_service_role(owner_url, spec.db_role)
        await grant_keystore(
            with_database(admin_url, keystore_db),
            spec.db_role,
            may_destroy=spec.name.value in KEY_DESTROYERS,
        )
        env[spec.name.value] = {
            "EXPENSURA_DATABASE_URL": with_database(admin_url, database, spec.db_role, password),
            "EXPENSURA_KEYSTORE_URL": with_database(admin_url, keystore_db, spec.db_role, password),
            "EXPENSURA_MASTER_KEY": master_key,
            "EXPENSURA_EVENT_SIGNING_KEY": signing_keys[spec.name.value],
            "EXPENSURA_EVENT_PUBLIC_KEYS": public_keys,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "EXPENSURA_SERVICE_URLS": json.dumps(urls),
            "EXPENSURA_PORT": str(ports[spec.name.value]),
            "EXPENSURA_INTERNAL_PORT": str(internal[spec.name.value]),
            "EXPENSURA_TOPIC_NAMESPACE": namespace,
            "EXPENSURA_KAFKA_TOPIC_PARTITIONS": str(topic_partitions),
            "EXPENSURA_SERVICE_KEY": service_keys[spec.name.value],
            "EXPENSURA_SERVICE_PUBLIC_KEYS": service_public_keys,
            **dict(extra_env or {}),
        }
    # Whose keys each role may open besides its own: from the projections that read other
    # services' personal fields (keystore_0004's row-level security does the rest).
    role = {s.name.value: s.db_role for s in SERVICES}
    readers: dict[str, set[str]] = {}
    for name, definition in definitions.items():
        for owner in definition.opens_keys_of:
            readers.setdefault(role[owner], set()).add(role[name])
    await grant_key_readers(with_database(admin_url, keystore_db), readers)
    kafka = KafkaSettings(
        bootstrap_servers, topic_namespace=namespace, topic_partitions=topic_partitions
    )
    await ensure_topics(kafka, [kafka.topic(s.name) for s in SERVICES])
    return env
