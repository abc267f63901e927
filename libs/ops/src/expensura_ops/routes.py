"""Every route of every service and who may call it, read from the code itself.

`expensura routes` prints it; `docs/security.md` carries it and a test keeps the two equal,
and fails when an `/internal` route declares no callers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute

from expensura_events.web.app import create_app
from expensura_events.web.auth import EVERY_SERVICE, declared_callers
from expensura_ops.services import service_definitions

# The dependency that admits a route's caller, by the name it has in the code.
_PRINCIPALS = {
    "user": "app user (access token)",
    "staff_with.<locals>.check": "staff with MFA (access token, roles)",
    "principal": "app user or staff (access token)",
    "partner": "partner (gateway token, signed request)",
}


@dataclass(frozen=True, order=True)
class RouteAccess:
    service: str
    path: str
    method: str
    who: str

    @property
    def internal(self) -> bool:
        return self.path.startswith("/internal")


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(list(included.routes))  # an include_router, kept lazy


def _who(route: APIRoute) -> str:
    services = declared_callers(route)
    if services is not None:
        return "every service" if services == EVERY_SERVICE else ", ".join(sorted(services))
    found: list[str] = []
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop(0)
        name = getattr(dependant.call, "__qualname__", "")
        if name in _PRINCIPALS and _PRINCIPALS[name] not in found:
            found.append(_PRINCIPALS[name])
        pending.extend(dependant.dependencies)
    # The most specific principal wins: `user` and `staff_with` depend on `principal`.
    specific = [w for w in found if w != _PRINCIPALS["principal"]]
    return (specific or found or ["anyone"])[0]


def route_access() -> list[RouteAccess]:
    """(service, path, method, who) for every operation every service serves."""
    rows = []
    for name, definition in service_definitions().items():
        app = create_app(definition)
        for route in _api_routes(list(app.routes)):
            if not route.include_in_schema:
                continue
            for method in sorted(set(route.methods or ()) - {"HEAD"}):
                rows.append(RouteAccess(name, route.path, method, _who(route)))
    return sorted(set(rows))


def markdown_table(rows: list[RouteAccess]) -> str:
    lines = ["| service | method | path | who may call it |", "|---|---|---|---|"]
    lines += [f"| {r.service} | {r.method} | `{r.path}` | {r.who} |" for r in rows]
    return "\n".join(lines) + "\n"
