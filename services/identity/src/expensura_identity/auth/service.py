"""The authentication service: one path for app users and staff.

Both kinds of principal sign in through `authenticate`: the same throttle (per claimed
account and per client address), the same password check off the event loop, and the same
work and answer for an unknown account as for a wrong password. What differs is what a
wrong password does to a known account (users: an event; staff: the lock-out count) and
what a proven password leads to (users: tokens; staff: the second factor).

The throttle's check and count are one statement per key (account, then client address):
an attempt is counted as a failure *before* its password is checked, and taken back only
once the password is proven; at the limit the statement counts nothing and the attempt is
refused. The counter's row stays locked until the attempt's transaction ends, so N parallel
guesses queue on it and each sees the count the one before left; a crash between the two
steps counts against the guesser.

Sessions are refresh-token families with an absolute end set at sign-in by the principal's
kind; every rotation keeps it and re-reads the principal (status, roles).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID, uuid4

import jwt
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.auth import AUDIENCE, ISSUER
from expensura_events.catalog.identity import (
    RefreshTokenReuseDetected,
    SessionRefreshRefused,
    SignedIn,
    SignedOut,
    SigningKeyRetired,
    SignInRefused,
)
from expensura_events.cipher import LOOKUP_HMAC, TOKEN_KEYS, KeyWrap
from expensura_events.envelope import Actor, DomainEvent, utcnow
from expensura_events.obligations import enforces
from expensura_events.retention import Expiry
from expensura_events.runtime import ServiceRuntime
from expensura_events.signing import SigningKey
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_identity.accounts import store as accounts_store
from expensura_identity.accounts.domain import AccountStatus, email_lookup
from expensura_identity.accounts.store import AccountRecord
from expensura_identity.auth import store
from expensura_identity.auth.domain import (
    MFA_CHALLENGE_TTL,
    ChallengeInvalid,
    NoSuchSigningKey,
    PrincipalKind,
    RefreshRefusal,
    RefreshRefused,
    RefreshReuse,
    TokenPair,
    TooManyAttempts,
    WrongCredentials,
    access_claims,
    account_throttle_key,
    challenge_refusal,
    client_throttle_key,
    refresh_expiry,
    retry_after,
    roles_on_refresh,
    session_cap,
    sessions_stream,
    signing_key_stream,
    token_refusal,
)
from expensura_identity.email_proof import store as email_proof_store
from expensura_identity.settings import IdentitySettings, identity_settings


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
    window = settings.sign_in_window_seconds
    at = utcnow()
    async with rt.engine.begin() as conn:
        # Account first, then client: one order for every attempt (account and client keys
        # are hashed in separate contexts), so two attempts never wait for each other in a
        # circle. A refusal raises here and rolls back the count it already took.
        for key, limit in (
            (account_key, settings.sign_in_failures_allowed),
            (client_key, settings.sign_in_failures_per_client),
        ):
            counted = await store.count_attempt(
                conn, key, limit=limit, now=at, window_seconds=window
            )
            if not counted.admitted:
                raise TooManyAttempts(retry_after(counted.window_start, window, at))
        # counted as a failure until the password is proven
        found = await principals.find(rt, conn, email)
    # Unknown accounts verify against a dummy hash: the same work, the same answer.
    proven = await rt.passwords.verify(found.password_hash if found else None, password)
    async with rt.engine.begin() as conn:
        if found is not None and proven:
            await store.clear_attempts(conn, account_key)
            await store.remove_attempt(conn, client_key)
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
    """The keys that verify access tokens: the live ones (a retired key is distrusted)."""
    return await store.published_keys(rt.engine, await token_keys(rt))


@enforces("SEC-4")
async def retire_key_for_incident(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    kid: str,
    *,
    incident_id: UUID,
    by: Actor,
    causation_id: UUID,
) -> bool:
    """An incident's containment (rotate-key): the access-token signing key is distrusted
    now, in the caller's transaction (the projection's, which applies each request once).
    Every token it signed is refused (identity reads its keys at each verification; other
    services from their next JWKS fetch) and the next token is signed by a new key.
    `identity.SigningKeyRetired` names the incident, the request as causation; recorded once
    per request: a rebuild replaying incident's log records nothing again. Whether this call
    recorded it. Raises NoSuchSigningKey (parked for an operator, not silently done)."""
    stream = signing_key_stream(kid)
    retired = await store.retire_key(conn, rt.engine, await token_keys(rt), kid, utcnow())
    if retired is None:
        raise NoSuchSigningKey(kid)
    if any(e.causation_id == causation_id for e in await rt.store.read_stream(conn, stream)):
        return False
    await rt.append(
        conn,
        [
            rt.envelope(
                SigningKeyRetired(kid=kid, incident_id=incident_id, already_retired=not retired),
                stream_id=stream,
                subject_id=None,
                actor=by,
                purpose=Purpose.SECURITY,
                causation_id=causation_id,
            )
        ],
    )
    return True


def session_end(rt: ServiceRuntime, kind: PrincipalKind, started_at: datetime) -> datetime:
    """When a session signed in now ends at the latest, whatever its rotations."""
    settings = identity_settings(rt)
    cap = session_cap(
        kind.value,
        user_max_seconds=settings.user_session_max_seconds,
        staff_max_seconds=settings.staff_session_max_seconds,
    )
    return started_at + cap


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
    family_expires_at: datetime,
    family_id: UUID | None = None,
    family_started_at: datetime | None = None,
) -> TokenPair:
    """A new access token and refresh token (in the caller's transaction). Used by app-user
    sign-in, staff sign-in and rotation alike: a new family starts now; a rotation passes
    its family's id, start and end, which the new token keeps."""
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
        expires_at=refresh_expiry(now, refresh_ttl, family_expires_at),
        family_started_at=family_started_at or now,
        family_expires_at=family_expires_at,
    )
    # No access token outlives its session either.
    access_ttl = max(1, min(access_ttl, int((family_expires_at - now).total_seconds())))
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


async def new_challenge(conn: AsyncConnection, staff_id: str, binding: bytes) -> str:
    """The opaque token that carries a proven password to the second step: stored by hash,
    bound to the client, good for five minutes and one successful answer."""
    challenge = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    now = utcnow()
    await store.insert_challenge(
        conn,
        token_hash(challenge),
        staff_id=staff_id,
        binding=binding,
        issued_at=now,
        expires_at=now + MFA_CHALLENGE_TTL,
    )
    return challenge


@dataclass(frozen=True)
class OpenChallenge:
    """A stored challenge as the second step finds it: whose, and why it cannot be answered
    (None: it can, once)."""

    staff_id: str
    refusal: str | None


async def open_challenge(conn: AsyncConnection, challenge: str, binding: bytes) -> OpenChallenge:
    """The challenge, locked until the transaction ends (parallel answers to one challenge
    queue here). Raises ChallengeInvalid if it was never issued."""
    record = await store.challenge_for_update(conn, token_hash(challenge))
    if record is None:
        raise ChallengeInvalid()
    refusal = challenge_refusal(
        utcnow(),
        used=record.used_at is not None,
        expires_at=record.expires_at,
        bound_to=record.client_binding,
        presented_by=binding,
    )
    return OpenChallenge(record.staff_id, refusal)


async def consume_challenge(conn: AsyncConnection, challenge: str) -> None:
    """The challenge is answered: it works no more (in the transaction that issues tokens)."""
    if not await store.consume_challenge(conn, token_hash(challenge), utcnow()):
        raise ChallengeInvalid()


async def revoke_principal(conn: AsyncConnection, principal_id: str) -> int:
    """Sign a principal out everywhere (account cancelled, staff locked out or disabled);
    how many sessions were live."""
    return await store.revoke_principal(conn, principal_id, utcnow())


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
            family_started_at=(started := utcnow()),
            family_expires_at=session_end(rt, PrincipalKind.USER, started),
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


@enforces("SEC-2")
async def refresh(rt: ServiceRuntime, refresh_token: str) -> TokenPair:
    """A new pair for a refresh token, which works once: reuse revokes the whole family
    (and is recorded). The new pair keeps the family's absolute end, and carries the
    principal's roles as they are now; a principal who may no longer sign in (closed,
    locked, disabled) loses the family instead. Every refusal of a known token is recorded.
    Raises RefreshRefused, RefreshReuse."""
    settings = identity_settings(rt)
    key = await signing_key(rt)
    hashed = token_hash(refresh_token)
    refused: RefreshRefused | RefreshReuse | None = None
    async with rt.engine.begin() as conn:
        named = await store.refresh_principal(conn, hashed)
        if named is None:
            raise RefreshRefused("unknown refresh token")
        kind, principal_id = named
        # The principal first, then the token: the order revocations take too.
        current = await store.standing(conn, kind, principal_id)
        row = await store.refresh_for_update(conn, hashed)
        if row is None:
            raise RefreshRefused("unknown refresh token")
        now = utcnow()
        reason = token_refusal(
            now,
            revoked=row.revoked_at is not None,
            expires_at=row.expires_at,
            family_expires_at=row.family_expires_at,
        )
        if reason is None and row.used_at is not None:
            await store.revoke_family(conn, row.family_id, now)
            refused = RefreshReuse(row.family_id, row.principal_id)
            await _session_event(rt, conn, row, RefreshTokenReuseDetected(session_id=row.family_id))
        elif (reason := reason or current.refusal) is not None:
            await store.revoke_family(conn, row.family_id, now)
            refused = RefreshRefused(_REFUSALS[reason])
            await _session_event(
                rt,
                conn,
                row,
                SessionRefreshRefused(
                    session_id=row.family_id, principal_kind=kind, reason=reason.value
                ),
            )
        else:
            await store.mark_used(conn, row.token_hash, now)
            pair = await issue(
                conn,
                key,
                kind=row.principal_kind,
                subject=row.principal_id,
                roles=roles_on_refresh(row.amr, current.roles),
                amr=row.amr,
                access_ttl=settings.access_token_ttl_seconds,
                refresh_ttl=settings.refresh_token_ttl_seconds,
                family_id=row.family_id,
                family_started_at=row.family_started_at,
                family_expires_at=row.family_expires_at,
            )
    if refused is not None:  # raised after the commit: the revocation and its event stay
        raise refused
    return pair


_REFUSALS: dict[RefreshRefusal, str] = {
    RefreshRefusal.REVOKED: "revoked refresh token",
    RefreshRefusal.EXPIRED: "expired refresh token",
    RefreshRefusal.SESSION_CAP: "the session reached its maximum lifetime",
    RefreshRefusal.PRINCIPAL_GONE: "unknown refresh token",
    RefreshRefusal.ACCOUNT_CLOSED: "the account is closed",
    RefreshRefusal.STAFF_LOCKED: "the account is locked",
    RefreshRefusal.STAFF_DISABLED: "the account is disabled",
}


async def _session_event(
    rt: ServiceRuntime, conn: AsyncConnection, row: store.RefreshRecord, event: DomainEvent
) -> None:
    await rt.append(
        conn,
        [
            rt.envelope(
                event,
                stream_id=sessions_stream(row.principal_id),
                subject_id=row.principal_id,
                actor=Actor.system("identity"),
                purpose=Purpose.SECURITY,
            )
        ],
    )


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


def retention(settings: IdentitySettings) -> list[Expiry]:
    """Identity's working rows that expire (ServiceDefinition.retention): sign-in throttle
    windows, MFA challenges, refresh tokens of ended sessions, e-mail proof codes."""
    return [
        store.throttle_expiry(settings.sign_in_throttle_retention_seconds),
        store.challenge_expiry(settings.mfa_challenge_retention_seconds),
        store.refresh_expiry(settings.refresh_token_retention_seconds),
        email_proof_store.code_expiry(settings.email_proof_retention_seconds),
    ]
