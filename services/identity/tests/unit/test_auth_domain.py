"""Authentication rules in memory: what tokens say, and when a sign-in is throttled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expensura_events.auth import AUDIENCE, ISSUER
from expensura_identity.accounts.domain import email_lookup
from expensura_identity.auth.domain import (
    MFA_AUDIENCE,
    PrincipalKind,
    TokenPair,
    Tokens,
    access_claims,
    account_throttle_key,
    client_throttle_key,
    mfa_challenge_claims,
    over_limit,
    sessions_stream,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LOOKUP_SECRET = b"look-up secret for unit tests!!!!"  # identity's lookup-hmac secret


def _claims(**overrides: object) -> dict[str, object]:
    args: dict[str, object] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "kind": "staff",
        "subject": "staff-0123456789ab",
        "roles": ["risk-analyst"],
        "amr": ["pwd", "otp"],
        "session_id": uuid.UUID(int=7),
        "now": NOW,
        "ttl_seconds": 600,
    }
    return access_claims(**(args | overrides))  # type: ignore[arg-type]


@pytest.mark.obligation("SEC-2")
def test_an_access_token_names_the_principal_its_roles_methods_session_and_lifetime() -> None:
    claims = _claims()
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["sub"] == "staff-0123456789ab" and claims["typ"] == "staff"
    assert claims["roles"] == ["risk-analyst"] and claims["amr"] == ["pwd", "otp"]
    assert claims["sid"] == str(uuid.UUID(int=7))
    assert claims["iat"] == NOW and claims["exp"] == NOW + timedelta(seconds=600)
    assert claims["jti"] != _claims()["jti"]  # every token is distinct


@pytest.mark.obligation("SEC-2")
def test_signed_claims_verify_as_every_service_verifies_them_and_not_as_a_challenge() -> None:
    key = Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    token = jwt.encode(_claims(now=now), key, algorithm="EdDSA")
    decoded = jwt.decode(
        token, key.public_key(), algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
    )
    assert decoded["typ"] == "staff"
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.public_key(), algorithms=["EdDSA"], audience=MFA_AUDIENCE)
    expired = jwt.encode(_claims(now=now - timedelta(seconds=601)), key, algorithm="EdDSA")
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(expired, key.public_key(), algorithms=["EdDSA"], audience=AUDIENCE)


@pytest.mark.obligation("SEC-2")
def test_an_mfa_challenge_lasts_five_minutes_and_is_never_an_access_token() -> None:
    claims = mfa_challenge_claims(ISSUER, "staff-0123456789ab", NOW)
    assert claims["aud"] == MFA_AUDIENCE != AUDIENCE
    assert claims["sub"] == "staff-0123456789ab"
    assert claims["exp"] - claims["iat"] == timedelta(minutes=5)
    assert "roles" not in claims and "amr" not in claims


def test_the_token_response_carries_the_pair_but_not_its_session() -> None:
    pair = TokenPair("access", "refresh", 600, uuid.uuid4())
    assert Tokens.of(pair).model_dump() == {
        "access_token": "access",
        "refresh_token": "refresh",
        "token_type": "Bearer",
        "expires_in": 600,
    }


@pytest.mark.obligation("SEC-2")
def test_a_sign_in_is_refused_once_any_key_reached_its_limit() -> None:
    account, client = b"a" * 32, b"c" * 32
    limits = {account: 5, client: 50}
    assert not over_limit({}, limits)
    assert not over_limit({account: 4, client: 49}, limits)
    assert over_limit({account: 5}, limits)
    assert over_limit({client: 50}, limits)
    assert over_limit({account: 9, client: 1}, limits)


def test_throttle_keys_are_keyed_per_principal_kind_and_ignore_the_spelling() -> None:
    user = account_throttle_key(LOOKUP_SECRET, PrincipalKind.USER, "Ann@Example.com ")
    assert user == account_throttle_key(LOOKUP_SECRET, PrincipalKind.USER, "ann@example.com")
    assert user == email_lookup(LOOKUP_SECRET, "ann@example.com")  # the key sign-up looks up
    staff = account_throttle_key(LOOKUP_SECRET, PrincipalKind.STAFF, "ann@example.com")
    assert staff != user  # a customer and a staff member with one address: two throttles
    assert client_throttle_key(LOOKUP_SECRET, "203.0.113.7") != client_throttle_key(
        LOOKUP_SECRET, "203.0.113.8"
    )
    other = b"another look-up secret, 32 bytes"
    assert user != account_throttle_key(other, PrincipalKind.USER, "ann@example.com")


def test_a_principals_sessions_have_a_stream_of_their_own() -> None:
    assert sessions_stream("6f1c") == "sessions-6f1c"
