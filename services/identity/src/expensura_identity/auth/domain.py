"""Authentication rules for app users and staff alike: what a token says, when a sign-in
is throttled, and the errors a sign-in ends in. Pure: no framework, no database."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel

from expensura_events.obligations import enforces
from expensura_identity.accounts.domain import lookup_key, normalise_email

# A staff sign-in's second step is bound to the first by a short-lived challenge: an opaque
# token stored by hash, consumed once, by the client that proved the password.
MFA_CHALLENGE_TTL = timedelta(minutes=5)


class PrincipalKind(StrEnum):
    """Who signs in: the `typ` claim of their tokens."""

    USER = "user"
    STAFF = "staff"


class NoSuchSigningKey(Exception):
    """An incident asked to retire a key identity never made (parked for an operator)."""


def signing_key_stream(kid: str) -> str:
    """A token-signing key's events (its retirement)."""
    return f"signing-key-{kid}"


class WrongCredentials(Exception):
    """Wrong e-mail or password (or code): the same answer whether or not the account
    exists, and whether or not it is locked, until the password is proven."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after = retry_after


class RefreshRefused(Exception):
    """Unknown, expired or revoked refresh token, a session past its cap, or a principal
    who may no longer sign in."""


class RefreshReuse(Exception):
    """A refresh token was presented twice: its whole family is now revoked."""

    def __init__(self, family_id: UUID, principal_id: str) -> None:
        super().__init__("refresh token reuse")
        self.family_id, self.principal_id = family_id, principal_id


class ChallengeInvalid(Exception):
    """The MFA challenge expired, was used already, was started by another client, or is not
    one."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: UUID


class Tokens(BaseModel):
    """The token response (RFC 6749 §5.1) of both sign-ins and of refresh: the pair without
    its session id."""

    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> Tokens:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            expires_in=pair.expires_in,
        )


def sessions_stream(principal_id: str) -> str:
    """A principal's sign-ins, refusals, reuse detections and sign-outs."""
    return f"sessions-{principal_id}"


def access_claims(
    *,
    issuer: str,
    audience: str,
    kind: str,
    subject: str,
    roles: Sequence[str],
    amr: Sequence[str],
    session_id: UUID,
    now: datetime,
    ttl_seconds: int,
    token_id: UUID | None = None,
) -> dict[str, Any]:
    """The claims of an access token every service verifies against identity's JWKS (the
    issuer and audience are the library's, which every verifier expects)."""
    return {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "typ": kind,
        "roles": list(roles),
        "amr": list(amr),
        "sid": str(session_id),
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": str(token_id or uuid4()),
    }


# --- session lifetimes ------------------------------------------------------------------------


class RefreshRefusal(StrEnum):
    """Why a known refresh token was refused (the reason of identity.SessionRefreshRefused)."""

    REVOKED = "revoked"
    EXPIRED = "expired"  # the token's own lifetime
    SESSION_CAP = "session-cap"  # the family's absolute end
    PRINCIPAL_GONE = "principal-gone"
    ACCOUNT_CLOSED = "account-closed"
    STAFF_LOCKED = "staff-locked"
    STAFF_DISABLED = "staff-disabled"


@enforces("SEC-2")
def session_cap(kind: str, *, user_max_seconds: int, staff_max_seconds: int) -> timedelta:
    """A session's absolute lifetime from its sign-in, by principal kind: staff one working
    day, users as configured. Any kind not named gets the shorter."""
    if kind == PrincipalKind.USER.value:
        return timedelta(seconds=user_max_seconds)
    return timedelta(seconds=min(staff_max_seconds, user_max_seconds))


def refresh_expiry(now: datetime, ttl_seconds: int, family_expires_at: datetime) -> datetime:
    """A new refresh token's end: its own lifetime, never past its family's."""
    return min(now + timedelta(seconds=ttl_seconds), family_expires_at)


@enforces("SEC-2")
def token_refusal(
    now: datetime, *, revoked: bool, expires_at: datetime, family_expires_at: datetime
) -> RefreshRefusal | None:
    """Why a stored refresh token no longer works, if it does not: revoked, past its own
    end, or past its family's cap (checked apart, so that tokens stored before a cap was
    lowered end at the cap too)."""
    if revoked:
        return RefreshRefusal.REVOKED
    if now >= family_expires_at:
        return RefreshRefusal.SESSION_CAP
    if now >= expires_at:
        return RefreshRefusal.EXPIRED
    return None


@dataclass(frozen=True)
class Standing:
    """A principal as they are now, read again at every refresh."""

    refusal: RefreshRefusal | None  # None: they may still hold a session
    roles: list[str]


def roles_on_refresh(amr: Sequence[str], current_roles: Sequence[str]) -> list[str]:
    """The roles a rotated token carries: the principal's roles now, not those of the
    sign-in; a session that never passed the second factor (a staff enrolment token)
    carries none."""
    return sorted(current_roles) if "otp" in amr else []


# --- the MFA challenge --------------------------------------------------------------------------


def client_binding(lookup_secret: bytes, client: str, user_agent: str) -> bytes:
    """What an MFA challenge is bound to: a keyed hash of the client's address (as the
    configured gateway forwards it) and its user agent. The challenge works only for the
    client that proved the password."""
    return lookup_key(lookup_secret, "mfa-client", f"{client}\n{user_agent}")


@enforces("SEC-2")
def challenge_refusal(
    now: datetime, *, used: bool, expires_at: datetime, bound_to: bytes, presented_by: bytes
) -> str | None:
    """Why a stored challenge cannot be answered, if it cannot: it was answered already (a
    replay), it expired, or another client presents it."""
    if used:
        return "challenge-replayed"
    if now >= expires_at:
        return "challenge-expired"
    if not hmac.compare_digest(bound_to, presented_by):
        return "challenge-other-client"
    return None


# --- throttling ---------------------------------------------------------------------------


def account_throttle_key(lookup_secret: bytes, kind: PrincipalKind, email: str) -> bytes:
    """The throttle key of the account an attempt claims, whether or not it exists. App
    users keep the key their sign-up lookup uses; staff have a key of their own, so that a
    customer and a staff member with one address do not throttle each other."""
    if kind is PrincipalKind.USER:
        return lookup_key(lookup_secret, "email", normalise_email(email))
    return lookup_key(lookup_secret, f"sign-in:{kind.value}", normalise_email(email))


def client_throttle_key(lookup_secret: bytes, client: str) -> bytes:
    return lookup_key(lookup_secret, "client", client)


def retry_after(window_start: datetime, window_seconds: int, now: datetime) -> int:
    """Seconds until a full key's window ends (at least one)."""
    end = window_start + timedelta(seconds=window_seconds)
    return max(1, int((end - now).total_seconds() + 0.999))
