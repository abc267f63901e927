"""Sign-in, token refresh, sign-out, and the published signing keys."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from expensura_events.fields import EmailAddress, Secret, Token
from expensura_events.web.auth import CurrentPrincipal, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.auth import service
from expensura_identity.auth.domain import (
    RefreshRefused,
    RefreshReuse,
    Tokens,
    TooManyAttempts,
    WrongCredentials,
)

router = APIRouter(tags=["sessions"])


class SignInRequest(BaseModel):
    email: EmailAddress
    password: Secret


class RefreshRequest(BaseModel):
    refresh_token: Annotated[Token, Field(min_length=10, max_length=200)]


class BadCredentials(Problem):
    status, title = 401, "Wrong e-mail or password"


class TooManyAttemptsProblem(Problem):
    status, title = 429, "Too many failed sign-ins"


class RefreshRefusedProblem(Problem):
    status, title = 401, "Refresh token refused"


def client_address(request: Request) -> str:
    """The client's address: the peer, or the address the configured gateway forwarded
    (uvicorn rewrites the peer only for proxies named in EXPENSURA_FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


@router.post("/v1/sessions", responses={401: {}, 429: {}, 503: {}})
async def sign_in(body: SignInRequest, request: Request, rt: Runtime) -> Tokens:
    """Sign in with e-mail and password; get a short-lived access token and a refresh token."""
    try:
        pair = await service.sign_in_user(rt, body.email, body.password, client_address(request))
    except TooManyAttempts as exc:
        raise TooManyAttemptsProblem(
            "Wait before trying again.", retry_after=exc.retry_after
        ) from None
    except WrongCredentials:
        raise BadCredentials("Check them and try again.") from None
    return Tokens.of(pair)


@router.post("/v1/sessions/refresh", responses={401: {}, 503: {}})
async def refresh(body: RefreshRequest, rt: Runtime) -> Tokens:
    """Trade a refresh token for a new pair. Each refresh token works once: reuse revokes
    the whole session."""
    try:
        return Tokens.of(await service.refresh(rt, body.refresh_token))
    except RefreshRefused as exc:
        raise RefreshRefusedProblem(f"{exc}; sign in again.") from None
    except RefreshReuse:
        raise RefreshRefusedProblem(
            "This refresh token was already used: the session was "
            "revoked everywhere. Sign in again."
        ) from None


@router.delete("/v1/sessions/current", status_code=204, responses={401: {}})
async def sign_out(caller: CurrentPrincipal, rt: Runtime) -> None:
    """Revoke the caller's session (its refresh tokens); access tokens expire on their own."""
    if caller.session_id is None:
        return
    await service.sign_out(rt, caller.kind, caller.id, UUID(caller.session_id))


@router.get("/.well-known/jwks.json", tags=["sessions"])
async def jwks(rt: Runtime) -> dict[str, Any]:
    """The public keys that verify access tokens (every service fetches these)."""
    return await service.published_keys(rt)
