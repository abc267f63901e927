"""The app team's API document: the services' OpenAPI documents merged into one, holding only
the operations the API gateway routes, each from the service it routes them to.

Pure: documents in, a document out. Which service a path goes to is the caller's answer
(`owner_of`; expensura_ops.gateway reads it from the gateway's own Caddyfile), so the
document lists exactly what the app can reach: no /internal, no probes, no partner routes.
Components keep their names unless two services define one name differently (the
sharing gateway's and consent's `DataCategory`): the later service's copy is renamed
`<Service>_<Name>`, and its references follow.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

_REF = "#/components/"


def merge_documents(
    documents: Mapping[str, Mapping[str, Any]],
    owner_of: Callable[[str], str | None],
    *,
    title: str,
    version: str,
    description: str = "",
) -> dict[str, Any]:
    """One OpenAPI document from `documents` (service name → its OpenAPI document), keeping
    each path only from the service `owner_of(path)` names (None: not routed, dropped)."""
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    tags: list[dict[str, Any]] = []
    for service in sorted(documents):
        document = documents[service]
        kept = {
            path: copy.deepcopy(item)
            for path, item in document.get("paths", {}).items()
            if owner_of(path) == service
        }
        if not kept:
            continue
        own = document.get("components", {})
        needed = _reachable(kept, own)
        renamed = _renames(service, needed, own, components)
        for section, name in sorted(needed):
            target = renamed.get((section, name), name)
            if target in components.get(section, {}) and (section, name) not in renamed:
                continue  # the same definition, already there
            components.setdefault(section, {})[target] = _rewrite(
                copy.deepcopy(own[section][name]), renamed
            )
        for path, item in kept.items():
            item = _rewrite(item, renamed)
            for operation in _operations(item):
                operation_id = operation.get("operationId")
                if operation_id is not None:
                    if operation_id in operation_ids:
                        operation_id = operation["operationId"] = f"{service}_{operation_id}"
                    operation_ids.add(operation_id)
                _rename_security(operation, renamed)
            paths[path] = item
        for tag in document.get("tags", []):
            if all(t.get("name") != tag.get("name") for t in tags):
                tags.append(copy.deepcopy(tag))
    merged: dict[str, Any] = {
        "openapi": min((d.get("openapi", "3.1.0") for d in documents.values()), default="3.1.0"),
        "info": {"title": title, "version": version}
        | ({"description": description} if description else {}),
        "paths": dict(sorted(paths.items())),
    }
    if tags:
        merged["tags"] = tags
    if components:
        merged["components"] = {
            section: dict(sorted(items.items())) for section, items in sorted(components.items())
        }
    return merged


def _operations(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    methods = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
    return [item[m] for m in methods if isinstance(item.get(m), dict)]


def _refs(value: Any) -> set[tuple[str, str]]:
    """(section, name) of every `$ref` to a component inside `value`."""
    found: set[tuple[str, str]] = set()
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF):
                section, _, name = ref[len(_REF) :].partition("/")
                found.add((section, name))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _security_names(paths: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        ("securitySchemes", name)
        for item in paths.values()
        for operation in _operations(item)
        for requirement in operation.get("security", [])
        for name in requirement
    }


def _reachable(
    paths: Mapping[str, Any], components: Mapping[str, Mapping[str, Any]]
) -> set[tuple[str, str]]:
    """The components `paths` use, directly or through other components."""
    pending = _refs(dict(paths)) | _security_names(paths)
    seen: set[tuple[str, str]] = set()
    while pending:
        key = pending.pop()
        section, name = key
        if key in seen or name not in components.get(section, {}):
            continue  # a dangling reference stays as it was: not ours to invent
        seen.add(key)
        pending |= _refs(components[section][name])
    return seen


def _renames(
    service: str,
    needed: set[tuple[str, str]],
    own: Mapping[str, Mapping[str, Any]],
    merged: Mapping[str, Mapping[str, Any]],
) -> dict[tuple[str, str], str]:
    """The components of `service` that must take another name: those defined differently
    by a service merged before, and those referring to a renamed one (until none changes)."""
    prefix = "".join(part.capitalize() for part in service.split("-"))
    renamed: dict[tuple[str, str], str] = {}
    changed = True
    while changed:
        changed = False
        for key in sorted(needed - renamed.keys()):
            section, name = key
            there = merged.get(section, {}).get(name)
            if there is None:
                continue
            mine = own[section][name]
            if there != mine or _refs(mine) & renamed.keys():
                renamed[key] = f"{prefix}_{name}"
                changed = True
    return renamed


def _rewrite(value: Any, renamed: Mapping[tuple[str, str], str]) -> Any:
    """`value` with its references to renamed components pointing at their new names."""
    if not renamed:
        return value
    if isinstance(value, dict):
        out = {k: _rewrite(v, renamed) for k, v in value.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            section, _, name = ref[len(_REF) :].partition("/")
            if (section, name) in renamed:
                out["$ref"] = f"{_REF}{section}/{renamed[(section, name)]}"
        return out
    if isinstance(value, list):
        return [_rewrite(v, renamed) for v in value]
    return value


def _rename_security(operation: dict[str, Any], renamed: Mapping[tuple[str, str], str]) -> None:
    if "security" in operation:
        operation["security"] = [
            {renamed.get(("securitySchemes", k), k): v for k, v in requirement.items()}
            for requirement in operation["security"]
        ]
