"""Partner authentication, the rules: OAuth2 client credentials (RFC 6749 §4.4), scopes per
purpose, and replay protection on every data request (a nonce used once, a timestamp
within the allowed skew). Pure: no framework, no storage.

Access tokens are EdDSA JWTs signed with the gateway's own key: only the gateway accepts
them (audience and issuer are the gateway), for minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from expensura_events.obligations import enforces
from expensura_sharing_gateway.partners.domain import Credential, CredentialState, PartnerKind

AUDIENCE = "expensura-sharing-gateway"
ALGORITHM = "EdDSA"
_hasher = PasswordHasher()


class InvalidClient(Exception):
    """Unknown client, wrong secret, a revoked, expired or unapproved credential, a partner
    not yet approved, or a bad token."""


class Replayed(Exception):
    """The request's nonce was used before."""


class StaleRequest(Exception):
    """The request's timestamp is outside the allowed window."""


@dataclass(frozen=True)
class Partner:
    """The calling partner, as its token says."""

    partner_id: str
    kind: PartnerKind
    scopes: frozenset[str]


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def secret_matches(secret_hash: str, secret: str) -> bool:
    try:
        return _hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


# One answer for every failure, so a caller learns nothing about which it was.
BAD_CLIENT = (
    "Unknown client, wrong secret, a revoked, expired or unapproved credential, "
    "or a partner not yet approved."
)


@enforces("SEC-2")
def check_client(
    credential: Credential, secret_hash: str, secret: str, now: datetime, *, registered: bool
) -> None:
    """The secret matches, the credential is approved and neither revoked nor expired, and
    the partner's registration is approved (four eyes: a pending partner or credential gets
    no token)."""
    if (
        not secret_matches(secret_hash, secret)
        or credential.state(now) is not CredentialState.ACTIVE
        or not registered
    ):
        raise InvalidClient(BAD_CLIENT)


def grant(granted: Iterable[str], scope: str) -> list[str]:
    """The scopes a token carries: those asked (all granted ones if none), within the grant."""
    allowed = set(granted)
    asked = set(scope.split()) if scope else allowed
    if not asked <= allowed:
        raise InvalidClient(f"Scopes not granted: {', '.join(sorted(asked - allowed))}.")
    return sorted(asked)


def token_claims(
    credential: Credential, kind: PartnerKind, scopes: list[str], now: datetime, ttl_seconds: int
) -> dict[str, Any]:
    return {
        "iss": AUDIENCE,
        "aud": AUDIENCE,
        "sub": credential.partner_id,
        "kind": kind.value,
        "client_id": credential.client_id,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
    }


def check_fresh(timestamp: int, now: float, skew_seconds: int) -> None:
    """A request's timestamp must be within the skew of now (with the nonce: no replay)."""
    if abs(now - timestamp) > skew_seconds:
        raise StaleRequest(f"X-Request-Timestamp must be within {_span(skew_seconds)} of now.")


def _span(seconds: int) -> str:
    return "five minutes" if seconds == 300 else f"{seconds} seconds"


def partner_of(claims: dict[str, Any]) -> Partner:
    return Partner(
        partner_id=claims["sub"],
        kind=PartnerKind(claims["kind"]),
        scopes=frozenset(claims["scope"].split()),
    )
