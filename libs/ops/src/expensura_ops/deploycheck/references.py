"""Every Secret and ConfigMap a rendered overlay refers to exists once deployed, with the keys
it is read by: made by the overlay itself, by an operator (Strimzi writes a KafkaUser's
password and its cluster CA; cert-manager or an operator the gateways' certificates), or by
`expensura_ops.deploysecrets`. A misspelt Secret name would otherwise surface only as a pod
stuck in CreateContainerConfigError."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from expensura_ops import deploysecrets

ANY_KEY: frozenset[str] = frozenset({"*"})
# Made outside this repository at deployment time (deploy/README.md, "Secrets and keys").
EXTERNAL = {
    ("Secret", "api-gateway-tls"): frozenset({"tls.crt", "tls.key"}),
    ("Secret", "partner-gateway-tls"): frozenset({"tls.crt", "tls.key"}),
}


def _made(objects: list[dict[str, Any]]) -> dict[tuple[str, str], frozenset[str]]:
    made = dict(EXTERNAL)
    services, owner, grafana = deploysecrets.new_secrets()
    for obj in deploysecrets.kubernetes_objects(services, owner, grafana) + objects:
        if obj["kind"] in ("Secret", "ConfigMap"):
            data = {**obj.get("data", {}), **obj.get("stringData", {})}
            made[(obj["kind"], obj["metadata"]["name"])] = frozenset(data)
        elif obj["kind"] == "KafkaUser":  # Strimzi's user operator
            made[("Secret", obj["metadata"]["name"])] = frozenset({"password", "sasl.jaas.config"})
        elif obj["kind"] == "Kafka":  # Strimzi's cluster operator
            made[("Secret", f"{obj['metadata']['name']}-cluster-ca-cert")] = frozenset(
                {"ca.crt", "ca.p12", "ca.password"}
            )
    return made


def _refs(node: Any) -> Iterator[tuple[str, str, str | None]]:
    """(kind, name, key or None) for every reference in an object."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(value, dict):
                yield from _refs(value)
                continue
            if key in ("secretKeyRef", "configMapKeyRef"):
                kind = "Secret" if key == "secretKeyRef" else "ConfigMap"
                yield (kind, value["name"], value.get("key"))
            elif key in ("secretRef", "configMapRef"):
                yield ("Secret" if key == "secretRef" else "ConfigMap", value["name"], None)
            elif key in ("secret", "configMap") and ("secretName" in value or "name" in value):
                kind = "Secret" if key == "secret" else "ConfigMap"
                name = value.get("secretName") or value["name"]
                items = value.get("items") or []
                yield from ((kind, name, item["key"]) for item in items)
                if not items:
                    yield (kind, name, None)
            elif key == "passwordSecret":  # CloudNativePG managed role
                yield ("Secret", value["name"], "password")
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def check(objects: list[dict[str, Any]]) -> list[str]:
    made = _made(objects)
    problems: list[str] = []
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = obj.get("spec", {})
        for kind, name, key in _refs(spec):
            keys = made.get((kind, name))
            if keys is None:
                problems.append(f"{where}: refers to {kind} {name}, which nothing makes")
            elif key is not None and keys != ANY_KEY and key not in keys:
                problems.append(
                    f"{where}: reads key {key!r} of {kind} {name}, which has {sorted(keys)}"
                )
    return problems
