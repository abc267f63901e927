"""The subset of kustomize that `deploy/k8s` uses, rendered offline with PyYAML.

No kustomize renderer installs from PyPI for Python 3.11, npm has none, and Debian's
(`kubernetes-client` 1.20) embeds kustomize 2.0, which predates `patches`. So this module
renders the fields the deployment uses — `resources` (files and directories),
`configMapGenerator` (files, literals, `behavior`), `patches` (strategic-merge files),
`namespace` and `images` — the way kustomize 5 does, hash suffixes included. A kustomization
that uses any other field is refused, so the subset cannot drift silently from what the
files ask for; a test renders the overlays with `kubectl kustomize` too, where it exists,
and requires the same objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_FIELDS = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "configMapGenerator", "images", "patches"}
)
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
# Groups whose kinds kustomize knows the schema of, so that lists merge by key in a patch.
# For custom resources it falls back to JSON merge patch: lists are replaced whole.
BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io"}
)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
# libyaml's parser where PyYAML was built with it: the pure-Python one takes seconds here.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
GENERATED = "__expensura_generated__"  # marks generated ConfigMaps until names get their hash


class KustomizeError(Exception):
    """The kustomization cannot be rendered (or uses a field outside the subset)."""


def load_documents(path: Path) -> list[Resource]:
    """Every non-empty YAML document of a file; each must be a Kubernetes object."""
    try:
        docs = [d for d in yaml.load_all(path.read_text(), Loader=Loader) if d is not None]
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{path}: not YAML: {exc}") from exc
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise KustomizeError(f"{path}: a document is not a Kubernetes object")
    return docs


def build(directory: Path, *, restrict_to_root: bool = True) -> list[Resource]:
    """Render a kustomization directory like `kustomize build` (the subset above).

    `restrict_to_root=False` is kustomize's `--load-restrictor=LoadRestrictionsNone`: generator
    files may live outside the kustomization's directory.
    """
    resources = _build(directory.resolve(), restrict_to_root)
    _name_generated(resources)
    return resources


def _build(directory: Path, restrict: bool) -> list[Resource]:
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    k = yaml.load(kfile.read_text(), Loader=Loader) or {}
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: fields outside the supported subset: {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in k.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += _build(path, restrict)
        elif path.is_file():
            resources += load_documents(path)
        else:
            raise KustomizeError(f"{kfile}: resource {entry!r} does not exist")
    for gen in k.get("configMapGenerator", []):
        _generate(directory, kfile, gen, resources, restrict)
    for patch in k.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{kfile}: only `patches: - path:` is supported, got {patch}")
        for doc in load_documents(directory / patch["path"]):
            _strategic_merge(_find(resources, doc, kfile), doc)
    if namespace := k.get("namespace"):
        _set_namespace(resources, namespace)
    for image in k.get("images", []):
        for res in resources:
            _set_image(res, image)
    _check_unique(resources, kfile)
    return resources


def _generate(
    directory: Path, kfile: Path, gen: dict[str, Any], resources: list[Resource], restrict: bool
) -> None:
    unknown = set(gen) - {"name", "files", "literals", "behavior"}
    if unknown:
        raise KustomizeError(f"{kfile}: configMapGenerator fields not supported: {unknown}")
    data: dict[str, str] = {}
    for literal in gen.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    for entry in gen.get("files", []):
        key, sep, rel = entry.partition("=")
        if not sep:
            key, rel = Path(entry).name, entry
        path = (directory / rel).resolve()
        if restrict and not path.is_relative_to(directory):
            raise KustomizeError(
                f"{kfile}: {rel} is outside {directory} (kustomize's load restrictor; "
                "render with it off)"
            )
        if not path.is_file():
            raise KustomizeError(f"{kfile}: configMapGenerator file {rel} does not exist")
        data[key] = path.read_text()
    name = gen["name"]
    behavior = gen.get("behavior", "create")
    existing = [r for r in resources if r.get(GENERATED) and r["metadata"]["name"] == name]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"{kfile}: ConfigMap {name} is generated twice")
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        resources.append({**cm, GENERATED: True})
    elif behavior in ("merge", "replace"):
        if not existing:
            raise KustomizeError(f"{kfile}: {behavior} of ConfigMap {name}, which no base made")
        base = existing[0]
        base["data"] = {**base["data"], **data} if behavior == "merge" else data
    else:
        raise KustomizeError(f"{kfile}: unknown generator behavior {behavior!r}")


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _find(resources: list[Resource], patch: Resource, kfile: Path) -> Resource:
    for res in resources:
        if (
            res["kind"] == patch["kind"]
            and res["metadata"]["name"] == patch["metadata"]["name"]
            and _group(res["apiVersion"]) == _group(patch["apiVersion"])
        ):
            return res
    raise KustomizeError(
        f"{kfile}: patch target {patch['kind']}/{patch['metadata']['name']} not found"
    )


def _strategic_merge(target: Resource, patch: Resource) -> None:
    builtin = _group(target["apiVersion"]) in BUILTIN_GROUPS
    _merge_map(target, patch, builtin)


def _merge_map(target: dict[str, Any], patch: dict[str, Any], builtin: bool) -> None:
    for key, value in patch.items():
        if key.startswith("$"):
            raise KustomizeError(f"patch directive {key} is outside the supported subset")
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_map(target[key], value, builtin)
        elif (
            builtin
            and isinstance(value, list)
            and isinstance(target.get(key), list)
            and (merge_key := _merge_key(key, value)) is not None
        ):
            _merge_list(target[key], value, merge_key, builtin)
        else:
            target[key] = copy.deepcopy(value)


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports" and items and isinstance(items[0], dict):
        return "containerPort" if "containerPort" in items[0] else "port"
    return MERGE_KEYS.get(field)


def _merge_list(target: list[Any], patch: list[Any], key: str, builtin: bool) -> None:
    for item in patch:
        match = next((t for t in target if isinstance(t, dict) and t.get(key) == item[key]), None)
        if match is None:
            target.append(copy.deepcopy(item))
        else:
            _merge_map(match, item, builtin)


def _set_namespace(resources: list[Resource], namespace: str) -> None:
    for res in resources:
        if res["kind"] in CLUSTER_SCOPED:
            continue
        res["metadata"]["namespace"] = namespace
        if res["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in res.get("subjects", []):
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace


def _containers(node: Any) -> Iterator[dict[str, Any]]:
    """Every container of any pod template in an object (kustomize's images transformer)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def _split_image(image: str) -> tuple[str, str]:
    """`name[:tag][@digest]` → (name, the rest with its separator)."""
    at = image.find("@")
    if at >= 0:
        return image[:at], image[at:]
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_image(res: Resource, spec: dict[str, Any]) -> None:
    unknown = set(spec) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"images fields not supported: {unknown}")
    for container in _containers(res):
        name, rest = _split_image(container.get("image", ""))
        if name != spec["name"]:
            continue
        if "digest" in spec:
            rest = "@" + spec["digest"]
        elif "newTag" in spec:
            rest = ":" + str(spec["newTag"])
        container["image"] = spec.get("newName", name) + rest


def _check_unique(resources: list[Resource], kfile: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for res in resources:
        key = identity(res)
        if key in seen:
            raise KustomizeError(f"{kfile}: {key[1]}/{key[3]} is declared twice")
        seen.add(key)


def identity(res: Resource) -> tuple[str, str, str, str]:
    meta = res["metadata"]
    return (_group(res["apiVersion"]), res["kind"], meta.get("namespace", ""), meta["name"])


def config_map_hash(data: dict[str, str]) -> str:
    """kustomize's name suffix: SHA-256 of Go's JSON of the ConfigMap, first 10 hex digits,
    with the letters kustomize swaps so that a suffix never spells a word.

    kustomize 5 looks the name up as the single path element "metadata/name", finds nothing
    and hashes an empty name; so does this, to produce the names kustomize produces.
    """
    encoded = json.dumps(
        {"data": data, "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # Go's encoding/json escapes these; the hash must see the same bytes.
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(char, escape)
    encoded = encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _name_generated(resources: list[Resource]) -> None:
    renamed: dict[tuple[str, str], str] = {}
    for res in resources:
        if res.pop(GENERATED, False):
            old = res["metadata"]["name"]
            new = f"{old}-{config_map_hash(res['data'])}"
            res["metadata"]["name"] = new
            renamed[(res["metadata"].get("namespace", ""), old)] = new
    for res in resources:
        namespace = res["metadata"].get("namespace", "")
        for ref in _config_map_refs(res):
            new_name = renamed.get((namespace, ref["name"]))
            if new_name:
                ref["name"] = new_name


def _config_map_refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every place a pod template names a ConfigMap: volumes (plain and projected), envFrom
    and env valueFrom."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("configMap", "configMapRef", "configMapKeyRef") and isinstance(value, dict):
                if "name" in value:
                    yield value
            else:
                yield from _config_map_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _config_map_refs(item)
