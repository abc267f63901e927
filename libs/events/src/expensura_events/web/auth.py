"""Who is calling, as FastAPI dependencies: the runtime, the principal, staff roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from expensura_events.auth import InvalidToken, Principal
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind
from expensura_events.web.problems import Forbidden, NotAuthenticated


def runtime_of(app: FastAPI) -> ServiceRuntime:
    """The service's runtime, which the app's lifespan built from its settings."""
    rt: ServiceRuntime = app.state.runtime
    return rt


def runtime(request: Request) -> ServiceRuntime:
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
