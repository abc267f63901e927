"""What the services contribute, discovered through entry points (ops imports no service):

- `expensura.services`: each service's `ServiceDefinition`;
- `expensura.commands`: command groups added to `expensura` (identity's `staff …`);
- `expensura.testing`: what the test harness needs of a service (identity's staff tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Protocol, cast

import typer

from expensura_events.projections import Projection
from expensura_events.runtime import ServiceDefinition, ServiceRuntime

RuntimeFor = Callable[[str], ServiceRuntime]


class CommandGroup(Protocol):
    """An `expensura.commands` entry point: builds a typer group, given how the CLI builds
    a service's runtime and how it holds an operator's input to the HTTP edge's types
    (`checked(EmailAddress)` is a typer callback)."""

    def __call__(
        self, runtime_for: RuntimeFor, checked: Callable[[Any], Callable[[str], str]], /
    ) -> typer.Typer: ...


def service_definitions() -> dict[str, ServiceDefinition]:
    found: dict[str, ServiceDefinition] = {}
    for ep in entry_points(group="expensura.services"):
        definition = ep.load()
        found[definition.spec.name.value] = definition
    return found


def service_packages() -> list[str]:
    """The top-level package of every installed service (`expensura_loans`, …)."""
    return sorted({ep.module.partition(".")[0] for ep in entry_points(group="expensura.services")})


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


def command_groups() -> dict[str, CommandGroup]:
    """Command groups by name (`expensura <name> …`)."""
    found = entry_points(group="expensura.commands")
    return {ep.name: cast(CommandGroup, ep.load()) for ep in found}


def testing_hook(name: str) -> Any:
    """The `expensura.testing` entry point `name`; a LookupError names what is missing."""
    found = entry_points(group="expensura.testing", name=name)
    if not found:
        raise LookupError(f"no service provides the testing hook {name!r} (is it installed?)")
    return next(iter(found)).load()
