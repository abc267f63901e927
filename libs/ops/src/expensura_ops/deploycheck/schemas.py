"""Every rendered object against a JSON schema: Kubernetes' own kinds against the schemas
bundled in the `kubernetes-validate` wheel (its strict variant: unknown fields are errors),
custom resources against the schemas written for this repository in `deploy/schemas/`. An
object whose kind has neither is an error too: nothing is deployed unchecked.

Validation runs on `jsonschema-rs`: the Python validator needs seconds for one overlay's
references into Kubernetes' 1.5 MB of definitions, the Rust one a fraction of that. Each
schema is made self-contained first (its external references point into a `$defs` added to
it), so no reference ever leaves the process.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import jsonschema_rs

KUBERNETES_VERSION = "1.33"  # the oldest Kubernetes the deployment supports
_K8S_DEFS = "/api/_definitions.json#"  # how the wheel's schemas point at the definitions


def package_dir(package: str) -> Path:
    """Where an installed package's files are, without importing it (imports cost seconds)."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _folder(version: str) -> Path:
    schemas = package_dir("kubernetes_validate") / "kubernetes-json-schema"
    return schemas / f"v{version}.0-local-strict"


@cache
def _kubernetes_definitions(version: str) -> dict[str, Any]:
    defs: dict[str, Any] = json.loads((_folder(version) / "_definitions.json").read_text())["$defs"]
    return defs


@cache
def _kubernetes_validator(version: str, api_version: str, kind: str) -> Any:
    # rbac.authorization.k8s.io/v1 → rbac-v1, apps/v1 → apps-v1, v1 → v1 (the wheel's names)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_file = _folder(version) / f"{kind.lower()}-{api}.json"
    if not schema_file.is_file():
        return None
    schema = json.loads(schema_file.read_text().replace(_K8S_DEFS, "#"))
    schema["$defs"] = _reachable(schema, _kubernetes_definitions(version))
    return jsonschema_rs.Draft202012Validator(schema)


def _reachable(schema: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The definitions a schema refers to, directly or not: compiling all ~1000 of them for
    every kind took most of the check's time."""
    found: dict[str, Any] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name not in found:
                    found[name] = defs[name]
                    pending.append(defs[name])
            pending.extend(v for k, v in node.items() if k != "$ref")
        elif isinstance(node, list):
            pending.extend(node)
    return found


class CustomSchemas:
    """The schemas in deploy/schemas/, by group/version/kind; `common.json` holds the parts
    they share."""

    def __init__(self, folder: Path) -> None:
        common_file = folder / "common.json"
        common_text = common_file.read_text() if common_file.is_file() else "{}"
        common = json.loads(common_text.replace('"common.json#', '"#'))
        self._validators: dict[tuple[str, str, str], Any] = {}
        for path in sorted(folder.glob("*.json")):
            if path.name == "common.json":
                continue
            schema = json.loads(path.read_text().replace('"common.json#', '"#'))
            schema["$defs"] = {**common.get("$defs", {}), **schema.get("$defs", {})}
            validator = jsonschema_rs.validator_for(schema)
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                self._validators[(gvk["group"], gvk["version"], gvk["kind"])] = validator

    def validator(self, api_version: str, kind: str) -> Any:
        group, _, version = api_version.rpartition("/")
        return self._validators.get((group, version, kind))


def validate_objects(
    objects: list[dict[str, Any]], custom: CustomSchemas, *, version: str = KUBERNETES_VERSION
) -> list[str]:
    problems: list[str] = []
    for obj in objects:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        name = f"{kind}/{obj.get('metadata', {}).get('name', '?')}"
        validator = custom.validator(api_version, kind)
        source = "deploy/schemas"
        if validator is None:
            validator = _kubernetes_validator(version, api_version, kind)
            source = f"Kubernetes {version}"
        if validator is None:
            problems.append(
                f"{name}: no schema for {api_version} {kind} (add one to deploy/schemas)"
            )
            continue
        for error in validator.iter_errors(obj):
            where = ".".join(str(p) for p in error.instance_path) or "(top)"
            problems.append(f"{name}: {where}: {error.message} ({source})")
    return problems
