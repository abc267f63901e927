"""Authentication rules for app users and staff alike: what a token says, when a sign-in
is throttled, and the errors a sign-in ends in. Pure: no framework, no database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel

from expensura_events.obligations import enforces
from expensura_identity.accounts.domain import lookup_key, normalise_email

# A staff sign-in's second step is bound to the first by this short-lived token; its own
# audience keeps it from ever being accepted as an access token.
MFA_AUDIENCE = "expensura-identity-mfa"
MFA_CHALLENGE_TTL = timedelta(minutes=5)


class PrincipalKind(StrEnum):
    """Who signs in: the `typ` claim of their tokens."""

    USER = "user"
    STAFF = "staff"


class WrongCredentials(Exception):
    """Wrong e-mail or password (or code): the same answer whether or not the account
    exists, and whether or not it is locked, until the password is proven."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after = retry_after


class RefreshRefused(Exception):
    """Unknown, expired or revoked refresh token."""


class RefreshReuse(Exception):
    """A refresh token was presented twice: its whole family is now revoked."""

    def __init__(self, family_id: UUID, principal_id: str) -> None:
        super().__init__("refresh token reuse")
        self.family_id, self.principal_id = family_id, principal_id


class ChallengeInvalid(Exception):
    """The MFA challenge expired, was forged, or is not one."""


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


def mfa_challenge_claims(issuer: str, staff_id: str, now: datetime) -> dict[str, Any]:
    """What the password step hands to the second step: who passed it, for five minutes."""
    return {
        "iss": issuer,
        "aud": MFA_AUDIENCE,
        "sub": staff_id,
        "iat": now,
        "exp": now + MFA_CHALLENGE_TTL,
    }


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


@enforces("SEC-2")
def over_limit(counts: Mapping[bytes, int], limits: Mapping[bytes, int]) -> bool:
    """True if any key (the account, the client address) reached its limit of failures
    within the window: the attempt is refused before any password is checked."""
    return any(counts.get(key, 0) >= limit for key, limit in limits.items())
