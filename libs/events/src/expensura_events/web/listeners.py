"""Which of a service's two listeners serves which path.

A service process serves one app on two ports (`expensura serve`): the public listener,
which only the gateways reach, and the internal listener, which only the other services and
Prometheus reach. Each port's server sees the app through `only_on(listener, app)`, so a
path the listener does not serve is answered 404 before any route, dependency or middleware
of the app runs — the same problem+json an unknown path gets, so the public port does not
even tell that an internal route exists.

- public: everything except `/internal/*` and the documents and metrics meant for the
  people and tools inside (`/openapi.json`, `/docs`, `/redoc`, `/metrics`);
- internal: `/internal/*`, the probes, `/metrics`, the API documents, and what peers read
  from each other that is also public: `/.well-known/*` (identity's token keys) and
  `/v1/me/data` (identity gathers the export from every service with the user's token).
"""

from __future__ import annotations

import re
from enum import StrEnum

from starlette.types import ASGIApp, Receive, Scope, Send

from expensura_events.web.problems import problem_response


class Listener(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


# Served by the internal listener only: the routes between services, and the documents and
# metrics (the gateways never route these either; deploy/gateway/Caddyfile).
INTERNAL_PREFIX = "/internal"
INTERNAL_ONLY = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/metrics"})
# Served by both: probes, and what a peer reads that a client reads as well.
SHARED = frozenset({"/healthz", "/readyz", "/v1/me/data"})
SHARED_PREFIXES = ("/.well-known/",)

_SLASHES = re.compile(r"/{2,}")


def _normal(path: str) -> str:
    # Routing never matches `//internal/log`; judging the collapsed form as well keeps the
    # decision from depending on that.
    return _SLASHES.sub("/", path)


def is_internal_route(path: str) -> bool:
    """A path under `/internal`: served on the internal listener, never the public one."""
    path = _normal(path)
    return path == INTERNAL_PREFIX or path.startswith(INTERNAL_PREFIX + "/")


def serves(listener: Listener, path: str) -> bool:
    """Whether `listener` answers requests for `path` (a request path, not a template)."""
    normal = _normal(path)
    if listener is Listener.PUBLIC:
        return not is_internal_route(normal) and normal not in INTERNAL_ONLY
    return (
        is_internal_route(normal)
        or normal in INTERNAL_ONLY
        or normal in SHARED
        or normal.startswith(SHARED_PREFIXES)
    )


def listeners_of(path: str) -> tuple[Listener, ...]:
    """The listeners that serve `path`: one, or both for the shared paths."""
    return tuple(listener for listener in Listener if serves(listener, path))


class ListenerFilter:
    """The app as one listener serves it: other paths are 404 before the app sees them.

    Lifespan messages pass through, so the filter can wrap the app a server runs the
    lifespan of."""

    def __init__(self, app: ASGIApp, listener: Listener) -> None:
        self.app, self.listener = app, listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or serves(self.listener, scope["path"]):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await problem_response(404, "Not Found")(scope, receive, send)


def only_on(listener: Listener, app: ASGIApp) -> ListenerFilter:
    return ListenerFilter(app, listener)
