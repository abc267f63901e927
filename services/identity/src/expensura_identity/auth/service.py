"""The authentication service: one path for app users and staff.

Both kinds of principal sign in through `authenticate`: the same throttle (per claimed
account and per client address), the same password check off the event loop, and the same
work and answer for an unknown account as for a wrong password. What differs is what a
wrong password does to a known account (users: an event; staff: the lock-out count) and
what a proven password leads to (users: tokens; staff: the second factor).

The throttle's check and count are one step: under an advisory lock per key, an attempt is
counted as a failure *before* its password is checked, and taken back only once the
password is proven. So N parallel guesses cannot all pass a count that none of them has
raised yet, and a crash between the two steps counts against the guesser.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol, TypeVar
from uuid import UUID, uuid4

import jwt
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.auth import AUDIENCE, ISSUER
from expensura_events.catalog.identity import (
    RefreshTokenReuseDetected,
    SignedIn,
    SignedOut,
    SignInRefused,
)
from expensura_events.cipher import LOOKUP_HMAC, TOKEN_KEYS, KeyWrap
from expensura_events.envelope import Actor, utcnow
from expensura_events.obligations import enforces
from expensura_events.runtime import ServiceRuntime
from expensura_events.signing import SigningKey
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_identity.accounts import store as accounts_store
from expensura_identity.accounts.domain import AccountStatus, email_lookup
from expensura_identity.accounts.store import AccountRecord
from expensura_identity.auth import store
from expensura_identity.auth.domain import (
    MFA_AUDIENCE,
    ChallengeInvalid,
    PrincipalKind,
    RefreshRefused,
    RefreshReuse,
    TokenPair,
    TooManyAttempts,
    WrongCredentials,
    access_claims,
    account_throttle_key,
    client_throttle_key,
    mfa_challenge_claims,
    over_limit,
    sessions_stream,
)
from expensura_identity.settings import identity_settings


class Credentials(Protocol):
    """What the authentication needs of a stored principal."""

    @property
    def principal_id(self) -> str: ...

    @property
    def password_hash(self) -> str: ...


C = TypeVar("C", bound=Credentials)


class Principals(Protocol[C]):
    """One kind of principal (app users, staff) as the authentication service sees it."""

    kind: PrincipalKind

    async def find(self, rt: ServiceRuntime, conn: AsyncConnection, email: str) -> C | None:
        """The principal the e-mail names, if any."""
        ...

    async def wrong_password(self, rt: ServiceRuntime, conn: AsyncConnection, found: C) -> None:
        """A wrong password for a known principal, in the transaction that records it."""
        ...


async def token_keys(rt: ServiceRuntime) -> KeyWrap:
    """What wraps identity's token-signing keys: its token-keys secret in the key store."""
    return await rt.secrets.key_wrap(TOKEN_KEYS)


@enforces("SEC-2")
async def authenticate(
    rt: ServiceRuntime, principals: Principals[C], email: str, password: str, client: str
) -> C:
    """The principal whose password this is. Raises TooManyAttempts (before any password
    is checked) or WrongCredentials (unknown account and wrong password alike)."""
    settings = identity_settings(rt)
    lookup_secret = await rt.secrets.get(LOOKUP_HMAC)
    account_key = account_throttle_key(lookup_secret, principals.kind, email)
    client_key = client_throttle_key(lookup_secret, client)
    limits = {
        account_key: settings.sign_in_failures_allowed,
        client_key: settings.sign_in_failures_per_client,
    }
    at = utcnow()
    async with rt.engine.begin() as conn:
        await store.lock_keys(conn, list(limits))
        counts = await store.recent_attempts(
            conn, list(limits), at - timedelta(seconds=settings.sign_in_window_seconds)
        )
        if over_limit(counts, limits):
            raise TooManyAttempts(retry_after=settings.sign_in_window_seconds)
        await store.add_attempt(conn, list(limits), at)  # a failure until the password is proven
        found = await principals.find(rt, conn, email)
    # Unknown accounts verify against a dummy hash: the same work, the same answer.
    proven = await rt.passwords.verify(found.password_hash if found else None, password)
    async with rt.engine.begin() as conn:
        if found is not None and proven:
            await store.clear_attempts(conn, account_key)
            await store.remove_attempt(conn, client_key, at)
            return found
        if found is not None:
            await principals.wrong_password(rt, conn, found)
    raise WrongCredentials()


# --- tokens ---------------------------------------------------------------------------------


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def signing_key(rt: ServiceRuntime) -> SigningKey:
    return await store.active_key(rt.engine, await token_keys(rt))


async def published_keys(rt: ServiceRuntime) -> dict[str, Any]:
    return await store.published_keys(rt.engine, await token_keys(rt))


async def issue(
    conn: AsyncConnection,
    key: SigningKey,
    *,
    kind: str,
    subject: str,
    roles: Sequence[str],
    amr: Sequence[str],
    access_ttl: int,
    refresh_ttl: int,
    family_id: UUID | None = None,
) -> TokenPair:
    """A new access token and refresh token (in the caller's transaction). Used by app-user
    sign-in, staff sign-in and rotation alike."""
    family = family_id or uuid4()
    refresh = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    now = utcnow()
    await store.insert_refresh(
        conn,
        token_hash(refresh),
        family_id=family,
        kind=kind,
        principal_id=subject,
        roles=roles,
        amr=amr,
        issued_at=now,
        expires_at=now + timedelta(seconds=refresh_ttl),
    )
    claims = access_claims(
        issuer=ISSUER,
        audience=AUDIENCE,
        kind=kind,
        subject=subject,
        roles=roles,
        amr=amr,
        session_id=family,
        now=now,
        ttl_seconds=access_ttl,
    )
    access = jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
    return TokenPair(access, refresh, access_ttl, family)


def mfa_challenge(key: SigningKey, staff_id: str) -> str:
    """The token that carries a proven password to the second step."""
    claims = mfa_challenge_claims(ISSUER, staff_id, utcnow())
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


def challenged_staff(key: SigningKey, challenge: str) -> str:
    """The staff id an MFA challenge was issued to. Raises ChallengeInvalid."""
    try:
        claims = jwt.decode(
            challenge,
            key.private_key.public_key(),
            algorithms=["EdDSA"],
            audience=MFA_AUDIENCE,
            issuer=ISSUER,
        )
    except jwt.PyJWTError:
        raise ChallengeInvalid() from None
    return str(claims["sub"])


async def revoke_principal(conn: AsyncConnection, principal_id: str) -> None:
    """Sign a principal out everywhere (account cancelled)."""
    await store.revoke_principal(conn, principal_id, utcnow())


# --- app users ------------------------------------------------------------------------------


class AppUsers:
    """App users as principals: found by their sign-up lookup; a wrong password for a known
    account is an event in its sessions stream (the failure is counted by the throttle)."""

    kind = PrincipalKind.USER

    async def find(
        self, rt: ServiceRuntime, conn: AsyncConnection, email: str
    ) -> AccountRecord | None:
        lookup = email_lookup(await rt.secrets.get(LOOKUP_HMAC), email)
        return await accounts_store.by_email(conn, lookup)

    async def wrong_password(
        self, rt: ServiceRuntime, conn: AsyncConnection, found: AccountRecord
    ) -> None:
        await _refused(rt, conn, found.principal_id, "wrong-password")


async def _refused(rt: ServiceRuntime, conn: AsyncConnection, account: str, reason: str) -> None:
    await rt.append(
        conn,
        [
            rt.envelope(
                SignInRefused(reason=reason),
                stream_id=sessions_stream(account),
                subject_id=account,
                actor=Actor(kind=ActorKind.USER, id=account),
                purpose=Purpose.SECURITY,
            )
        ],
    )


async def sign_in_user(rt: ServiceRuntime, email: str, password: str, client: str) -> TokenPair:
    """E-mail and password → a short-lived access token and a refresh token. Raises
    TooManyAttempts, WrongCredentials."""
    settings = identity_settings(rt)
    account = await authenticate(rt, AppUsers(), email, password, client)
    if account.status is not AccountStatus.OPEN:
        async with rt.engine.begin() as conn:
            await _refused(rt, conn, account.principal_id, f"account-{account.status.value}")
        raise WrongCredentials()
    key = await signing_key(rt)
    async with rt.engine.begin() as conn:
        pair = await issue(
            conn,
            key,
            kind=PrincipalKind.USER.value,
            subject=account.principal_id,
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
                        principal_kind=PrincipalKind.USER.value,
                        session_id=pair.session_id,
                        methods=["pwd"],
                    ),
                    stream_id=sessions_stream(account.principal_id),
                    subject_id=account.principal_id,
                    actor=Actor(kind=ActorKind.USER, id=account.principal_id),
                    purpose=Purpose.SECURITY,
                )
            ],
        )
    return pair


async def refresh(rt: ServiceRuntime, refresh_token: str) -> TokenPair:
    """A new pair for a refresh token, which works once: reuse revokes the whole family
    (and is recorded). Raises RefreshRefused, RefreshReuse."""
    settings = identity_settings(rt)
    key = await signing_key(rt)
    reuse: RefreshReuse | None = None
    async with rt.engine.begin() as conn:
        row = await store.refresh_for_update(conn, token_hash(refresh_token))
        now = utcnow()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise RefreshRefused("unknown, expired or revoked refresh token")
        if row.used_at is not None:
            await store.revoke_family(conn, row.family_id, now)
            reuse = RefreshReuse(row.family_id, row.principal_id)
            await rt.append(
                conn,
                [
                    rt.envelope(
                        RefreshTokenReuseDetected(session_id=row.family_id),
                        stream_id=sessions_stream(row.principal_id),
                        subject_id=row.principal_id,
                        actor=Actor.system("identity"),
                        purpose=Purpose.SECURITY,
                    )
                ],
            )
        else:
            await store.mark_used(conn, row.token_hash, now)
            pair = await issue(
                conn,
                key,
                kind=row.principal_kind,
                subject=row.principal_id,
                roles=row.roles,
                amr=row.amr,
                access_ttl=settings.access_token_ttl_seconds,
                refresh_ttl=settings.refresh_token_ttl_seconds,
                family_id=row.family_id,
            )
    if reuse is not None:  # raised after the commit: the revocation and its event stay
        raise reuse
    return pair


async def sign_out(rt: ServiceRuntime, kind: ActorKind, principal_id: str, session: UUID) -> None:
    """Revoke the session's refresh tokens; access tokens expire on their own."""
    async with rt.engine.begin() as conn:
        await store.revoke_family(conn, session, utcnow())
        await rt.append(
            conn,
            [
                rt.envelope(
                    SignedOut(session_id=session),
                    stream_id=sessions_stream(principal_id),
                    subject_id=principal_id if kind is ActorKind.USER else None,
                    actor=Actor(kind=kind, id=principal_id),
                    purpose=Purpose.SECURITY,
                )
            ],
        )
