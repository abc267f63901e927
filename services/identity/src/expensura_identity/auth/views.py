"""Sign-in, token refresh, sign-out, and the published signing keys."""

from __future__ import annotations

from typing import Annotated, Any

from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from expensura_events.catalog.identity import (
    RefreshTokenReuseDetected,
    SignedIn,
    SignedOut,
    SignInRefused,
)
from expensura_events.cipher import MasterKey
from expensura_events.envelope import Actor
from expensura_events.fields import EmailAddress, Secret, Token
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_events.web.auth import CurrentPrincipal, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.accounts.lookup import email_lookup, lookup_key
from expensura_identity.accounts.tables import accounts
from expensura_identity.accounts.views import password_hasher
from expensura_identity.auth import sessions, throttle
from expensura_identity.auth.keys import active_key, published_keys
from expensura_identity.settings import IdentitySettings

router = APIRouter(tags=["sessions"])
# Verified against when the account does not exist, so timing does not reveal accounts.
_DUMMY_HASH = password_hasher.hash("not a real password, only for timing")


class SignInRequest(BaseModel):
    email: EmailAddress
    password: Secret


class RefreshRequest(BaseModel):
    refresh_token: Annotated[Token, Field(min_length=10, max_length=200)]


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int


class BadCredentials(Problem):
    status, title = 401, "Wrong e-mail or password"


class TooManyAttempts(Problem):
    status, title = 429, "Too many failed sign-ins"


class RefreshRefusedProblem(Problem):
    status, title = 401, "Refresh token refused"


def identity_settings(rt: Any) -> IdentitySettings:
    settings = rt.settings
    assert isinstance(settings, IdentitySettings)
    return settings


def _to_tokens(pair: sessions.TokenPair) -> Tokens:
    return Tokens(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post("/v1/sessions", responses={401: {}, 429: {}, 503: {}})
async def sign_in(body: SignInRequest, request: Request, rt: Runtime) -> Tokens:
    """Sign in with e-mail and password; get a short-lived access token and a refresh token."""
    settings = identity_settings(rt)
    lookup = email_lookup(settings.master_key, body.email)
    client = request.client.host if request.client else "unknown"
    client_key = lookup_key(settings.master_key, "client", client)
    keys = [lookup, client_key]
    limits = {
        lookup: settings.sign_in_failures_allowed,
        client_key: settings.sign_in_failures_per_client,
    }
    async with rt.engine.begin() as conn:
        if await throttle.too_many_failures(
            conn, limits, window_seconds=settings.sign_in_window_seconds
        ):
            raise TooManyAttempts(
                "Wait before trying again.", retry_after=settings.sign_in_window_seconds
            )
        row = (
            await conn.execute(
                select(accounts.c.account_id, accounts.c.password_hash, accounts.c.status).where(
                    accounts.c.email_lookup == lookup
                )
            )
        ).one_or_none()
        ok = _password_matches(row.password_hash if row else _DUMMY_HASH, body.password)
        if row is None or not ok or row.status != "open":
            await throttle.record_failure(conn, keys)
            if row is not None:
                account = str(row.account_id)
                await rt.append(
                    conn,
                    [
                        rt.envelope(
                            SignInRefused(
                                reason="wrong-password" if not ok else f"account-{row.status}"
                            ),
                            stream_id=f"sessions-{account}",
                            subject_id=account,
                            actor=Actor(kind=ActorKind.USER, id=account),
                            purpose=Purpose.SECURITY,
                        )
                    ],
                )
            failed = True
        else:
            failed = False
            account = str(row.account_id)
            await throttle.clear(conn, lookup)
            key = await active_key(rt.engine, MasterKey.from_base64(settings.master_key))
            pair = await sessions.issue(
                conn,
                key,
                kind="user",
                subject=account,
                roles=[],
                amr=["pwd"],
                access_ttl=settings.access_token_ttl_seconds,
                refresh_ttl=settings.refresh_token_ttl_seconds,
            )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        SignedIn(
                            principal_kind="user", session_id=pair.session_id, methods=["pwd"]
                        ),
                        stream_id=f"sessions-{account}",
                        subject_id=account,
                        actor=Actor(kind=ActorKind.USER, id=account),
                        purpose=Purpose.SECURITY,
                    )
                ],
            )
    if failed:
        raise BadCredentials("Check them and try again.")
    return _to_tokens(pair)


def _password_matches(hashed: str, password: str) -> bool:
    try:
        return password_hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


@router.post("/v1/sessions/refresh", responses={401: {}, 503: {}})
async def refresh(body: RefreshRequest, rt: Runtime) -> Tokens:
    """Trade a refresh token for a new pair. Each refresh token works once: reuse revokes
    the whole session."""
    settings = identity_settings(rt)
    key = await active_key(rt.engine, MasterKey.from_base64(settings.master_key))
    reuse: sessions.RefreshReuse | None = None
    try:
        async with rt.engine.begin() as conn:
            try:
                pair = await sessions.rotate(
                    conn,
                    key,
                    body.refresh_token,
                    access_ttl=settings.access_token_ttl_seconds,
                    refresh_ttl=settings.refresh_token_ttl_seconds,
                )
            except sessions.RefreshReuse as exc:
                reuse = exc
                await rt.append(
                    conn,
                    [
                        rt.envelope(
                            RefreshTokenReuseDetected(session_id=exc.family_id),
                            stream_id=f"sessions-{exc.principal_id}",
                            subject_id=exc.principal_id,
                            actor=Actor.system("identity"),
                            purpose=Purpose.SECURITY,
                        )
                    ],
                )
    except sessions.RefreshRefused as exc:
        raise RefreshRefusedProblem(f"{exc}; sign in again.") from None
    if reuse is not None:
        raise RefreshRefusedProblem(
            "This refresh token was already used: the session was "
            "revoked everywhere. Sign in again."
        )
    return _to_tokens(pair)


@router.delete("/v1/sessions/current", status_code=204, responses={401: {}})
async def sign_out(caller: CurrentPrincipal, rt: Runtime) -> None:
    """Revoke the caller's session (its refresh tokens); access tokens expire on their own."""
    if caller.session_id is None:
        return
    from uuid import UUID

    session = UUID(caller.session_id)
    async with rt.engine.begin() as conn:
        await sessions.revoke_family(conn, session)
        await rt.append(
            conn,
            [
                rt.envelope(
                    SignedOut(session_id=session),
                    stream_id=f"sessions-{caller.id}",
                    subject_id=caller.id if caller.kind is ActorKind.USER else None,
                    actor=Actor(kind=caller.kind, id=caller.id),
                    purpose=Purpose.SECURITY,
                )
            ],
        )


@router.get("/.well-known/jwks.json", tags=["sessions"])
async def jwks(rt: Runtime) -> dict[str, Any]:
    """The public keys that verify access tokens (every service fetches these)."""
    return await published_keys(rt.engine, MasterKey.from_base64(rt.settings.master_key))
