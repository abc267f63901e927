"""The service definitions, discovered through the `expensura.services` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

from expensura_events.projections import Projection
from expensura_events.runtime import ServiceDefinition


def service_definitions() -> dict[str, ServiceDefinition]:
    found: dict[str, ServiceDefinition] = {}
    for ep in entry_points(group="expensura.services"):
        definition = ep.load()
        found[definition.spec.name.value] = definition
    return found


def find_projection(name: str) -> tuple[ServiceDefinition, Projection]:
    for definition in service_definitions().values():
        for make in definition.projections:
            projection = make()
            if projection.name == name:
                return definition, projection
    raise KeyError(name)


def all_projections() -> list[tuple[str, str]]:
    return sorted(
        (d.spec.name.value, make().name)
        for d in service_definitions().values()
        for make in d.projections
    )
