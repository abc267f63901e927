"""Which service is calling: short-lived service tokens signed with each service's own key.

Every service holds one Ed25519 private key (`EXPENSURA_SERVICE_KEY`) and the public keys of
all services (`EXPENSURA_SERVICE_PUBLIC_KEYS`, name → list of keys, a list so that a rotation
publishes the next key before it is used). A call to another service's `/internal` route
carries a JWT (EdDSA) the caller signed: issuer = caller, audience = the callee, valid for
under a minute. The callee verifies it against the issuer's published keys only, so a
service can speak for nobody but itself, and a token for one service is refused by another.

Why tokens and not mutual TLS: the same check runs in-process in tests, behind any proxy and
on any platform, rotation is a list of keys in configuration, and the caller's name reaches
the route (which decides who may call it) without parsing certificates. Transport
encryption between pods stays the platform's job (deploy/README.md).

Pure: no I/O, so the rules are unit-tested.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from expensura_events import ed25519

TOKEN_TYPE = "service+jwt"
TOKEN_SECONDS = 60  # a captured token is useless after a minute
LEEWAY_SECONDS = 5  # clock skew between hosts
# A caller sends the same token while it has at least this long to live, then mints the
# next: a callee then checks the signature once per token, not once per request.
REUSE_WHILE_SECONDS_LEFT = TOKEN_SECONDS // 2
VERIFIED_TOKENS_KEPT = 4096  # distinct tokens remembered as verified (about 2 per caller)


class ServiceTokenRefused(Exception):
    """The token is missing, malformed, expired, for another service, or not signed by a key
    the issuer publishes. The message names the reason, never the token."""


class ServiceKeyMissing(Exception):
    """This process has no private key: it cannot call other services' internal routes."""


class _Verified(NamedTuple):
    """What a token's verified signature and claims established; only its time can change."""

    issuer: str
    issued: float
    expires: float
    not_before: float | None


@dataclass(frozen=True)
class ServiceIdentity:
    """This service's name and key, and every service's published keys.

    A verified token is remembered by its exact text until it expires: the signature, the
    audience, the issuer and the lifetime are facts of those bytes and the published keys
    (both fixed for this object's life; a rotation builds a new one), so a repeated token
    needs only its time checked again. The calling side sends one token per callee until
    half its minute is left (`headers_for`), so the cache holds about two per caller."""

    name: str
    private_key: Ed25519PrivateKey | None
    published: Mapping[str, Sequence[Ed25519PublicKey]] = field(default_factory=dict)
    _verified: dict[str, _Verified] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _sent: dict[str, tuple[str, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _key_ids: dict[str, dict[str, Ed25519PublicKey]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for caller, keys in self.published.items():
            self._key_ids[caller] = {ed25519.key_id(k): k for k in reversed(keys)}

    @classmethod
    def from_config(
        cls, name: str, private_key: str | None, public_keys: Mapping[str, Sequence[str]]
    ) -> ServiceIdentity:
        return cls(
            name=name,
            private_key=ed25519.private_key(private_key) if private_key else None,
            published={
                caller: [ed25519.public_key(k) for k in keys]
                for caller, keys in public_keys.items()
            },
        )

    def token_for(self, audience: str, *, now: float | None = None) -> str:
        """A token that says "I am `self.name`" to `audience` only, for TOKEN_SECONDS."""
        if self.private_key is None:
            raise ServiceKeyMissing(f"{self.name} has no service key (EXPENSURA_SERVICE_KEY)")
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.name,
            "sub": self.name,
            "aud": audience,
            "iat": issued,
            "exp": issued + TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        headers = {"typ": TOKEN_TYPE, "kid": ed25519.key_id(self.private_key.public_key())}
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers=headers)

    def headers_for(self, audience: str) -> dict[str, str]:
        """The header for a call to `audience`: the last token minted for it while at least
        REUSE_WHILE_SECONDS_LEFT of its life remain (it is valid all the same; re-sending
        it lets the callee skip verifying a signature it verified already)."""
        now = time.time()
        sent = self._sent.get(audience)
        if sent is None or sent[1] - now < REUSE_WHILE_SECONDS_LEFT:
            sent = (self.token_for(audience, now=now), int(now) + TOKEN_SECONDS)
            self._sent[audience] = sent
        return {"Authorization": f"Bearer {sent[0]}"}

    def verify(self, token: str, *, now: float | None = None) -> str:
        """The name of the service that signed `token` for this service, or refused."""
        reference = time.time() if now is None else now
        known = self._verified.get(token)
        if known is not None:
            return _in_time(known, reference)
        verified = self._verify_signed(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._forget_expired(reference)
        self._verified[token] = verified
        return _in_time(verified, reference)

    def _forget_expired(self, now: float) -> None:
        for token, known in list(self._verified.items()):
            if known.expires + LEEWAY_SECONDS < now:
                del self._verified[token]
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()  # a flood of distinct valid tokens: start over

    def _verify_signed(self, token: str) -> _Verified:
        """Signature, header and claims (PyJWT checks the time too, against the clock)."""
        try:
            header = jwt.get_unverified_header(token)
            claimed = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ServiceTokenRefused("not a service token") from None
        if header.get("typ") != TOKEN_TYPE or header.get("alg") != "EdDSA":
            raise ServiceTokenRefused("not a service token")
        issuer = claimed.get("iss")
        if not isinstance(issuer, str) or claimed.get("sub") != issuer:
            raise ServiceTokenRefused("the token names no calling service")
        key = self._key_ids.get(issuer, {}).get(str(header.get("kid")))
        if key is None:
            raise ServiceTokenRefused(f"no published key of {issuer!r} signed it")
        try:
            verified = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=self.name,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "aud", "iss", "sub"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise ServiceTokenRefused("the token expired") from None
        except jwt.InvalidAudienceError:
            raise ServiceTokenRefused("the token is for another service") from None
        except jwt.PyJWTError:
            raise ServiceTokenRefused("the token's signature or claims are invalid") from None
        if verified["exp"] - verified["iat"] > TOKEN_SECONDS + LEEWAY_SECONDS:
            raise ServiceTokenRefused("the token lives longer than a service token may")
        nbf = verified.get("nbf")
        return _Verified(
            issuer,
            float(verified["iat"]),
            float(verified["exp"]),
            None if nbf is None else float(nbf),
        )


def _in_time(known: _Verified, now: float) -> str:
    """The time checks of a verified token, as PyJWT makes them (with the leeway), and the
    rule that a service token is not issued in the future."""
    if known.expires <= now - LEEWAY_SECONDS:
        raise ServiceTokenRefused("the token expired")
    if known.not_before is not None and known.not_before > now + LEEWAY_SECONDS:
        raise ServiceTokenRefused("the token's signature or claims are invalid")
    if known.issued > now + LEEWAY_SECONDS:
        raise ServiceTokenRefused("the token lives longer than a service token may")
    return known.issuer


def new_service_keys(names: Sequence[str]) -> tuple[dict[str, str], str]:
    """One key pair per name: each name's private key, and the JSON of every public key."""
    pairs = {name: ed25519.KeyPair.new() for name in names}
    return (
        {name: pair.private for name, pair in pairs.items()},
        json.dumps({name: [pair.public] for name, pair in pairs.items()}),
    )
