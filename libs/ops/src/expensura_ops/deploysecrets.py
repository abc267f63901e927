"""The deployment's secrets, made once per environment: each service's database password,
master key, service-identity key and event-signing key (Ed25519), the provisioning role's
password, Grafana's admin password, and the public keys every service verifies with.

    python -m expensura_ops.deploysecrets k8s | kubectl create -n NAMESPACE -f -
    python -m expensura_ops.deploysecrets compose deploy/compose/secrets

`kubectl create`, never `apply`: making them again would replace the master keys, and every
personal field sealed under the old ones would become unreadable. Nothing is printed but the
output asked for. Key formats: private keys are the base64 of the 32-byte Ed25519 seed;
`EXPENSURA_SERVICE_PUBLIC_KEYS` and `EXPENSURA_EVENT_PUBLIC_KEYS` map each service to a list
of base64 raw public keys (a list, so that a rotation can publish the next key before use).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from expensura_events.ed25519 import KeyPair
from expensura_events.topology import KEYSTORE_DATABASE, SERVICES

OWNER_ROLE = "expensura_owner"  # owns every database; the provisioning Job migrates as it
PUBLIC_KEYS_CONFIGMAP = "expensura-public-keys"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class ServiceSecrets:
    name: str
    role: str
    database: str
    db_password: str
    master_key: str
    service_key: KeyPair
    event_key: KeyPair


def new_secrets() -> tuple[list[ServiceSecrets], str, str]:
    """Fresh secrets for every service, the owner role's password, Grafana's password.
    Passwords are hex so that they need no escaping in a database URL."""
    services = [
        ServiceSecrets(
            name=spec.name.value,
            role=spec.db_role,
            database=spec.database,
            db_password=secrets.token_hex(24),
            master_key=_b64(os.urandom(32)),
            service_key=KeyPair.new(),
            event_key=KeyPair.new(),
        )
        for spec in SERVICES
    ]
    return services, secrets.token_hex(24), secrets.token_hex(16)


def public_keys(services: list[ServiceSecrets]) -> dict[str, str]:
    return {
        "EXPENSURA_SERVICE_PUBLIC_KEYS": json.dumps(
            {s.name: [s.service_key.public] for s in services}
        ),
        "EXPENSURA_EVENT_PUBLIC_KEYS": json.dumps({s.name: [s.event_key.public] for s in services}),
    }


def _secret(name: str, data: dict[str, str], kind: str = "Opaque", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "expensura"}}
    meta["labels"].update(labels)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": meta,
        "stringData": data,
    }


def kubernetes_objects(
    services: list[ServiceSecrets], owner: str, grafana: str
) -> list[dict[str, Any]]:
    """The Secrets and the public-key ConfigMap the manifests refer to (deploy/README.md)."""
    objects: list[dict[str, Any]] = []
    basic = "kubernetes.io/basic-auth"  # what CloudNativePG reads a managed role's password from
    for s in services:
        db = {"username": s.role, "password": s.db_password}
        objects.append(_secret(f"{s.name}-db", db, basic, **{"cnpg.io/reload": "true"}))
        keys = {
            "master-key": s.master_key,
            "service-key": s.service_key.private,
            "event-signing-key": s.event_key.private,
        }
        objects.append(_secret(f"{s.name}-keys", keys))
    owner_data = {"username": OWNER_ROLE, "password": owner}
    objects.append(_secret("provision-db", owner_data, basic, **{"cnpg.io/reload": "true"}))
    objects.append(_secret("grafana-admin", {"password": grafana}))
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": PUBLIC_KEYS_CONFIGMAP,
                "labels": {"app.kubernetes.io/part-of": "expensura"},
            },
            "data": public_keys(services),
        }
    )
    return objects


def compose_files(services: list[ServiceSecrets], owner: str, grafana: str) -> dict[str, str]:
    """The env files deploy/compose/compose.yaml reads, by file name."""

    def env(values: dict[str, str]) -> str:
        return "".join(f"{k}={v}\n" for k, v in values.items())

    def url(role: str, password: str, database: str) -> str:
        return f"postgresql+asyncpg://{role}:{password}@postgres:5432/{database}"

    files = {
        "postgres.env": env({"POSTGRES_PASSWORD": owner}),
        "provision.env": env(
            {
                "EXPENSURA_PROVISION_DATABASE_URL": url("postgres", owner, "postgres"),
                **{
                    f"EXPENSURA_{s.name.replace('-', '_').upper()}_DB_PASSWORD": s.db_password
                    for s in services
                },
            }
        ),
        "public-keys.env": env(public_keys(services)),
        "grafana-admin": grafana + "\n",
    }
    for s in services:
        files[f"{s.name}.env"] = env(
            {
                "EXPENSURA_DATABASE_URL": url(s.role, s.db_password, s.database),
                "EXPENSURA_KEYSTORE_URL": url(s.role, s.db_password, KEYSTORE_DATABASE),
                "EXPENSURA_MASTER_KEY": s.master_key,
                "EXPENSURA_SERVICE_KEY": s.service_key.private,
                "EXPENSURA_EVENT_SIGNING_KEY": s.event_key.private,
            }
        )
    return files


def main(argv: list[str]) -> int:
    if (
        len(argv) < 1
        or argv[0] not in ("k8s", "compose")
        or (argv[0] == "compose") != (len(argv) == 2)
    ):
        print(__doc__, file=sys.stderr)
        return 2
    services, owner, grafana = new_secrets()
    if argv[0] == "k8s":
        items = kubernetes_objects(services, owner, grafana)
        yaml.safe_dump(
            {"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout, sort_keys=False
        )
        return 0
    folder = Path(argv[1])
    files = compose_files(services, owner, grafana)
    existing = [name for name in files if (folder / name).exists()]
    if existing:
        print(f"{folder} already holds {', '.join(existing)}; not replacing keys", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, text in files.items():
        path = folder / name
        path.touch(mode=0o600)
        path.write_text(text)
    print(f"wrote {len(files)} files to {folder} (mode 600)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
