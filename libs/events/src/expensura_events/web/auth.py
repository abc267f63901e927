"""Who is calling, as FastAPI dependencies: the runtime, the principal, staff roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute

from expensura_events.auth import InvalidToken, Principal
from expensura_events.runtime import ServiceRuntime
from expensura_events.service_identity import ServiceTokenRefused
from expensura_events.topology import SERVICES
from expensura_events.vocabulary import ActorKind
from expensura_events.web.problems import Forbidden, NotAuthenticated


def runtime_of(app: FastAPI) -> ServiceRuntime:
    """The service's runtime, which the app's lifespan built from its settings."""
    rt: ServiceRuntime = app.state.runtime
    return rt


async def runtime(request: Request) -> ServiceRuntime:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hand-off on
    # every request that names the runtime
    return runtime_of(request.app)


Runtime = Annotated[ServiceRuntime, Depends(runtime)]


async def principal(request: Request, rt: Runtime) -> Principal:
    """The caller, from `Authorization: Bearer <access token>` (issued by identity)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("Send an access token: Authorization: Bearer <token>.")
    try:
        return await rt.token_verifier.verify(token.strip())
    except InvalidToken as exc:
        raise NotAuthenticated(f"The access token was refused: {exc}.") from None


async def user(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if caller.kind is not ActorKind.USER:
        raise Forbidden("This endpoint is for app users.")
    return caller


CurrentPrincipal = Annotated[Principal, Depends(principal)]
CurrentUser = Annotated[Principal, Depends(user)]


def staff_with(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Staff who passed MFA and hold one of `roles` (least privilege, SEC-2)."""

    async def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if caller.kind is not ActorKind.STAFF:
            raise Forbidden("This endpoint is for staff.")
        if not caller.mfa:
            raise Forbidden("Personal data needs a second factor: sign in with your TOTP code.")
        if roles and not caller.roles & set(roles):
            raise Forbidden(f"Needs one of the roles: {', '.join(sorted(roles))}.")
        return caller

    return check


# --- service identity on internal routes (service_identity.py) ---

EVERY_SERVICE: frozenset[str] = frozenset(s.name.value for s in SERVICES)
_CALLERS_ATTRIBUTE = "expensura_callers"
_refusals = structlog.get_logger("expensura.internal")


RefusalHook = Callable[[Request, ServiceRuntime, str | None, str], Awaitable[None]]


def callers(*names: str, on_refused: RefusalHook | None = None) -> Any:
    """Only these services may call the route: a service token from one of them, or 401
    (no or bad token) / 403 (a service not on the list), both logged. Every `/internal`
    route declares its callers; a test enumerates all routes of all services to keep it so.
    The dependency's value is the calling service's name. `on_refused(request, rt, caller,
    reason)` runs before the refusal, for routes whose refusals the log must show."""
    unknown = set(names) - EVERY_SERVICE
    if unknown or not names:
        raise ValueError(f"callers must be service names, not {sorted(unknown) or 'nothing'}")
    allowed = frozenset(names)

    async def calling_service(request: Request, rt: Runtime) -> str:
        route = request.scope.get("route")
        where = getattr(route, "path", request.url.path)

        async def refuse(caller: str | None, reason: str) -> None:
            _refusals.warning("internal_call_refused", route=where, caller=caller, reason=reason)
            if on_refused is not None:
                await on_refused(request, rt, caller, reason)

        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await refuse(None, "no service token")
            raise NotAuthenticated("Internal routes need a service token: Authorization: Bearer.")
        try:
            caller = rt.service_identity.verify(token.strip())
        except ServiceTokenRefused as exc:
            await refuse(None, str(exc))
            raise NotAuthenticated(f"The service token was refused: {exc}.") from None
        if caller not in allowed:
            await refuse(caller, "not allowed")
            raise Forbidden(f"{caller} may not call this route.")
        return caller

    setattr(calling_service, _CALLERS_ATTRIBUTE, allowed)
    return Depends(calling_service)


def declared_callers(route: APIRoute) -> frozenset[str] | None:
    """The services a route admits, or None when it declares none (a public route)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        found = getattr(dependant.call, _CALLERS_ATTRIBUTE, None)
        if found is not None:
            return frozenset(found)
        pending.extend(dependant.dependencies)
    return None
