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
    MFA_CHALLENGE_TTL,
    PrincipalKind,
    RefreshRefusal,
    TokenPair,
    Tokens,
    access_claims,
    account_throttle_key,
    challenge_refusal,
    client_binding,
    client_throttle_key,
    refresh_expiry,
    retry_after,
    roles_on_refresh,
    session_cap,
    sessions_stream,
    token_refusal,
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
def test_signed_claims_verify_as_every_service_verifies_them() -> None:
    key = Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    token = jwt.encode(_claims(now=now), key, algorithm="EdDSA")
    decoded = jwt.decode(
        token, key.public_key(), algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
    )
    assert decoded["typ"] == "staff"
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.public_key(), algorithms=["EdDSA"], audience="another-audience")
    expired = jwt.encode(_claims(now=now - timedelta(seconds=601)), key, algorithm="EdDSA")
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(expired, key.public_key(), algorithms=["EdDSA"], audience=AUDIENCE)


# --- the MFA challenge --------------------------------------------------------------------------

ALICE = client_binding(LOOKUP_SECRET, "203.0.113.7", "Mozilla/5.0 (X11)")


@pytest.mark.obligation("SEC-2")
def test_a_challenge_is_bound_to_the_address_and_user_agent_that_started_it() -> None:
    assert client_binding(LOOKUP_SECRET, "203.0.113.7", "Mozilla/5.0 (X11)") == ALICE
    assert client_binding(LOOKUP_SECRET, "203.0.113.8", "Mozilla/5.0 (X11)") != ALICE
    assert client_binding(LOOKUP_SECRET, "203.0.113.7", "curl/8.0") != ALICE
    # the separator keeps address and agent apart: no shifting one into the other
    assert client_binding(LOOKUP_SECRET, "a", "bc") != client_binding(LOOKUP_SECRET, "ab", "c")
    assert client_binding(b"another secret", "203.0.113.7", "Mozilla/5.0 (X11)") != ALICE


@pytest.mark.obligation("SEC-2")
def test_a_challenge_is_answered_once_in_five_minutes_by_its_own_client() -> None:
    ends = NOW + MFA_CHALLENGE_TTL
    assert timedelta(minutes=5) == MFA_CHALLENGE_TTL

    def refusal(**overrides: object) -> str | None:
        args: dict[str, object] = {
            "used": False,
            "expires_at": ends,
            "bound_to": ALICE,
            "presented_by": ALICE,
        }
        return challenge_refusal(NOW, **(args | overrides))  # type: ignore[arg-type]

    assert refusal() is None
    assert refusal(used=True) == "challenge-replayed"
    assert refusal(expires_at=NOW) == "challenge-expired"
    other = client_binding(LOOKUP_SECRET, "198.51.100.1", "Mozilla/5.0 (X11)")
    assert refusal(presented_by=other) == "challenge-other-client"
    # a replay is named a replay whoever presents it, however late
    assert refusal(used=True, expires_at=NOW, presented_by=other) == "challenge-replayed"


# --- session lifetimes --------------------------------------------------------------------------

HOUR = 3600
CAPS = {"user_max_seconds": 30 * 24 * HOUR, "staff_max_seconds": 10 * HOUR}


@pytest.mark.obligation("SEC-2")
def test_a_session_is_capped_by_its_principal_kind() -> None:
    assert session_cap("user", **CAPS) == timedelta(days=30)
    assert session_cap("staff", **CAPS) == timedelta(hours=10)
    # a kind not named gets the shorter cap, never the users' month
    assert session_cap("service", **CAPS) == timedelta(hours=10)
    short = {"user_max_seconds": HOUR, "staff_max_seconds": 10 * HOUR}
    assert session_cap("staff", **short) == timedelta(hours=1)


@pytest.mark.obligation("SEC-2")
def test_a_rotated_token_never_outlives_its_family() -> None:
    family_ends = NOW + timedelta(hours=10)
    # the first staff refresh must not get the users' thirty days
    assert refresh_expiry(NOW, 30 * 24 * HOUR, family_ends) == family_ends
    assert refresh_expiry(NOW, HOUR, family_ends) == NOW + timedelta(hours=1)


@pytest.mark.obligation("SEC-2")
def test_a_stored_token_is_refused_when_revoked_expired_or_past_its_sessions_cap() -> None:
    token_ends, family_ends = NOW + timedelta(hours=1), NOW + timedelta(hours=10)

    def at(when: datetime, revoked: bool = False, family: datetime = family_ends) -> object:
        return token_refusal(when, revoked=revoked, expires_at=token_ends, family_expires_at=family)

    assert at(NOW) is None
    assert at(NOW, revoked=True) is RefreshRefusal.REVOKED
    assert at(token_ends) is RefreshRefusal.EXPIRED
    assert at(family_ends) is RefreshRefusal.SESSION_CAP
    # a token stored before the cap was lowered ends at the cap all the same
    assert at(NOW, family=NOW - timedelta(seconds=1)) is RefreshRefusal.SESSION_CAP


@pytest.mark.obligation("SEC-2")
def test_a_refresh_carries_the_principals_roles_now_and_none_without_mfa() -> None:
    assert roles_on_refresh(["pwd", "otp"], ["risk-analyst", "customer-service"]) == [
        "customer-service",
        "risk-analyst",
    ]
    assert roles_on_refresh(["pwd", "otp"], []) == []  # roles taken away: gone at refresh
    assert roles_on_refresh(["pwd"], ["administrator"]) == []  # an enrolment session


def test_the_token_response_carries_the_pair_but_not_its_session() -> None:
    pair = TokenPair("access", "refresh", 600, uuid.uuid4())
    assert Tokens.of(pair).model_dump() == {
        "access_token": "access",
        "refresh_token": "refresh",
        "token_type": "Bearer",
        "expires_in": 600,
    }


def test_a_full_key_is_retried_when_its_window_ends() -> None:
    assert retry_after(NOW, 900, NOW) == 900
    assert retry_after(NOW, 900, NOW + timedelta(seconds=899.5)) == 1
    assert retry_after(NOW, 900, NOW + timedelta(seconds=1000)) == 1  # at least one second


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
