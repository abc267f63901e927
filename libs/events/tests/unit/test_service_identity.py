"""Service tokens: a service speaks only for itself, only to the service it addressed, for a
minute. The attacks on internal routes, as pure rules."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from expensura_events.ed25519 import KeyPair, key_id
from expensura_events.service_identity import (
    REUSE_WHILE_SECONDS_LEFT,
    TOKEN_SECONDS,
    ServiceIdentity,
    ServiceKeyMissing,
    ServiceTokenRefused,
    new_service_keys,
)
from expensura_events.web.auth import callers

NAMES = ["identity", "consent", "sharing-gateway"]
Keys = tuple[dict[str, str], dict[str, list[str]]]


@pytest.fixture(scope="module")
def keys() -> Keys:
    private, published = new_service_keys(NAMES)
    return private, json.loads(published)


def as_(name: str, keys: Keys) -> ServiceIdentity:
    private, published = keys
    return ServiceIdentity.from_config(name, private[name], published)


def test_a_token_names_its_signer_to_the_service_it_addressed(keys: Keys) -> None:
    token = as_("sharing-gateway", keys).token_for("identity")
    assert as_("identity", keys).verify(token) == "sharing-gateway"


def test_a_token_for_one_service_is_refused_by_another(keys: Keys) -> None:
    token = as_("sharing-gateway", keys).token_for("identity")
    with pytest.raises(ServiceTokenRefused, match="another service"):
        as_("consent", keys).verify(token)


def test_a_service_cannot_speak_for_another(keys: Keys) -> None:
    """Consent's key, the gateway's name: no published key of the gateway signed it."""
    private, _ = keys
    consent_key = ServiceIdentity.from_config("consent", private["consent"], {}).private_key
    assert consent_key is not None
    forged = jwt.encode(
        {"iss": "sharing-gateway", "sub": "sharing-gateway", "aud": "identity",
         "iat": int(time.time()), "exp": int(time.time()) + 30},
        consent_key,
        algorithm="EdDSA",
        headers={"typ": "service+jwt", "kid": key_id(consent_key.public_key())},
    )  # fmt: skip
    with pytest.raises(ServiceTokenRefused, match="no published key"):
        as_("identity", keys).verify(forged)


def test_an_unknown_key_is_refused_even_with_the_right_claims(keys: Keys) -> None:
    outsider = ServiceIdentity.from_config("sharing-gateway", KeyPair.new().private, {})
    with pytest.raises(ServiceTokenRefused, match="no published key"):
        as_("identity", keys).verify(outsider.token_for("identity"))


def test_an_expired_token_is_refused(keys: Keys) -> None:
    old = as_("sharing-gateway", keys).token_for("identity", now=time.time() - TOKEN_SECONDS - 30)
    with pytest.raises(ServiceTokenRefused, match="expired"):
        as_("identity", keys).verify(old)


def test_a_long_lived_token_is_refused_though_validly_signed(keys: Keys) -> None:
    """An insider with the key cannot mint a day-long token to hand around."""
    private, _ = keys
    key = ServiceIdentity.from_config("sharing-gateway", private["sharing-gateway"], {})
    assert key.private_key is not None
    now = int(time.time())
    token = jwt.encode(
        {"iss": "sharing-gateway", "sub": "sharing-gateway", "aud": "identity",
         "iat": now, "exp": now + 86_400},
        key.private_key,
        algorithm="EdDSA",
        headers={"typ": "service+jwt", "kid": key_id(key.private_key.public_key())},
    )  # fmt: skip
    with pytest.raises(ServiceTokenRefused, match="longer"):
        as_("identity", keys).verify(token)


def test_unsigned_and_foreign_tokens_are_refused(keys: Keys) -> None:
    claims = {"iss": "sharing-gateway", "sub": "sharing-gateway", "aud": "identity"}
    unsigned = jwt.encode(claims, key=None, algorithm="none", headers={"typ": "service+jwt"})
    hmac = jwt.encode(claims, "secret-long-enough-for-hs256-keys!", algorithm="HS256",
                      headers={"typ": "service+jwt"})  # fmt: skip
    for token in (unsigned, hmac, "not-a-token", ""):
        with pytest.raises(ServiceTokenRefused):
            as_("identity", keys).verify(token)


def test_the_next_published_key_is_accepted_during_a_rotation(keys: Keys) -> None:
    private, published = keys
    nxt = KeyPair.new()
    rotated = {**published, "sharing-gateway": [*published["sharing-gateway"], nxt.public]}
    verifier = ServiceIdentity.from_config("identity", private["identity"], rotated)
    old = ServiceIdentity.from_config("sharing-gateway", private["sharing-gateway"], {})
    new = ServiceIdentity.from_config("sharing-gateway", nxt.private, {})
    assert verifier.verify(old.token_for("identity")) == "sharing-gateway"
    assert verifier.verify(new.token_for("identity")) == "sharing-gateway"


def test_without_a_private_key_a_service_cannot_call(keys: Keys) -> None:
    _, published = keys
    with pytest.raises(ServiceKeyMissing):
        ServiceIdentity.from_config("identity", None, published).token_for("consent")


def test_keys_are_checked_when_read() -> None:
    for bad in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            ServiceIdentity.from_config("identity", bad or "x", {})
        with pytest.raises(ValueError):
            ServiceIdentity.from_config("identity", None, {"consent": [bad or "x"]})


def test_callers_are_service_names() -> None:
    with pytest.raises(ValueError):
        callers("anyone")
    with pytest.raises(ValueError):
        callers()


@given(st.text(max_size=300))
def test_any_text_is_refused_cleanly(token: str) -> None:
    verifier = ServiceIdentity.from_config("identity", None, {"consent": [KeyPair.new().public]})
    with pytest.raises(ServiceTokenRefused):
        verifier.verify(token)


def test_a_remembered_token_still_expires(keys: Keys) -> None:
    """A token verified once is answered from memory, but never past its minute."""
    verifier = as_("identity", keys)
    token = as_("sharing-gateway", keys).token_for("identity")
    issued = time.time()
    assert verifier.verify(token) == "sharing-gateway"
    assert verifier.verify(token, now=issued + TOKEN_SECONDS / 2) == "sharing-gateway"
    with pytest.raises(ServiceTokenRefused, match="expired"):
        verifier.verify(token, now=issued + TOKEN_SECONDS + 10)


def test_a_refused_token_is_refused_again(keys: Keys) -> None:
    """Only verified tokens are remembered: a refusal is re-checked, and stays a refusal."""
    token = as_("sharing-gateway", keys).token_for("identity")
    consent = as_("consent", keys)
    for _ in range(2):
        with pytest.raises(ServiceTokenRefused, match="another service"):
            consent.verify(token)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    identity = as_("identity", keys)
    assert identity.verify(token) == "sharing-gateway"
    with pytest.raises(ServiceTokenRefused):
        identity.verify(tampered)


def test_a_caller_resends_its_token_until_half_its_life_is_left(keys: Keys) -> None:
    caller = as_("sharing-gateway", keys)
    first = caller.headers_for("identity")
    assert caller.headers_for("identity") == first
    assert caller.headers_for("consent") != first
    issued, _ = caller._sent["identity"]
    caller._sent["identity"] = (issued, time.time() + REUSE_WHILE_SECONDS_LEFT - 1)
    assert caller.headers_for("identity") != first
