"""Partner authentication, the rules: OAuth2 client credentials (RFC 6749 §4.4), scopes per
purpose, and every data request signed and bound to its nonce. Pure: no framework, no
storage.

Access tokens are EdDSA JWTs signed with the gateway's own key: only the gateway accepts
them (audience and issuer are the gateway), for minutes. With each token the gateway hands
out a request key (derived from the token's id, so the gateway stores none), and the partner
signs every data request with it, HTTP Message Signatures (RFC 9421) style: HMAC-SHA256 over
the method, the path, the query, the body's SHA-256 (`Content-Digest`, RFC 9530), a nonce
and the time it was created. A captured request cannot be sent again (its nonce is used),
nor sent with another body, path or method (its signature no longer matches), and the token
it carries is useless without the key, which never travels with a data request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

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


class BadSignature(Exception):
    """The request is unsigned, or its signature does not cover what was sent."""


@dataclass(frozen=True)
class Partner:
    """The calling partner, as its token says."""

    partner_id: str
    kind: PartnerKind
    scopes: frozenset[str]
    client_id: str | None = None  # the credential its token came from


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
        # Names the token's request key (`request_key`): a key per token, not per credential,
        # so a leaked key dies with its token, minutes later.
        "jti": str(uuid4()),
    }


def check_fresh(timestamp: int, now: float, skew_seconds: int) -> None:
    """A request's timestamp must be within the skew of now (with the nonce: no replay)."""
    if abs(now - timestamp) > skew_seconds:
        raise StaleRequest(
            f"The signature's created time must be within {_span(skew_seconds)} of now."
        )


def _span(seconds: int) -> str:
    return "five minutes" if seconds == 300 else f"{seconds} seconds"


def partner_of(claims: dict[str, Any]) -> Partner:
    return Partner(
        partner_id=claims["sub"],
        kind=PartnerKind(claims["kind"]),
        scopes=frozenset(claims["scope"].split()),
        client_id=claims.get("client_id"),
    )


# --- signed requests ------------------------------------------------------------------------

SIGNATURE_ALGORITHM = "hmac-sha256"
# What every signature must cover; RFC 9421 lets the signer list them in any order.
COVERED = frozenset({"@method", "@path", "@query", "content-digest"})
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,100}$")
# One signature, its covered components and its parameters, as RFC 9421 §4.1 serialises them
# (a strict subset: no spaces around `;`, no other members). `sig1=("@method" …);created=…`
_SIGNATURE_INPUT = re.compile(
    r'^(?P<label>[a-z][a-z0-9_-]{0,31})=(?P<params>\((?P<components>(?:"[@a-z0-9-]{1,40}" ?)*)\)'
    r'(?:;[a-z]{1,16}=(?:[0-9]{1,15}|"[!#-\[\]-~ ]{0,100}"))*)$'
)
_PARAM = re.compile(r';([a-z]{1,16})=([0-9]{1,15}|"[^"]*")')
_SIGNATURE = re.compile(
    r"^(?P<label>[a-z][a-z0-9_-]{0,31})=:(?P<value>[A-Za-z0-9+/]{1,100}={0,2}):$"
)
_PARAMS_ALLOWED = frozenset({"created", "nonce", "alg", "keyid"})


@dataclass(frozen=True)
class SignedRequest:
    """A data request as it arrived: what the signature must cover, and the signature."""

    method: str
    path: str  # as sent, percent-encoding kept
    query: str  # as sent, without the "?"
    body: bytes
    content_digest: str | None
    signature_input: str | None
    signature: str | None


@dataclass(frozen=True)
class RequestProof:
    """What a valid signature proves the partner sent, for the used-once check."""

    nonce: str
    created: int


def request_key(root: bytes, token_id: str) -> bytes:
    """The key a token's holder signs requests with: HMAC of the token's id under the
    gateway's request-signing secret, recomputed on every request, stored nowhere."""
    return hmac.digest(root, b"expensura:partner-request-key:" + token_id.encode(), "sha256")


def content_digest(body: bytes) -> str:
    """RFC 9530 `Content-Digest` of a body: `sha-256=:<base64>:`."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def signature_base(
    components: Iterable[str], method: str, path: str, query: str, digest: str, params: str
) -> bytes:
    """RFC 9421 §2.5: one line per covered component, in the order the signer listed them,
    then the signature's own parameters."""
    values = {
        "@method": method.upper(),
        "@path": path or "/",
        "@query": f"?{query}",
        "content-digest": digest,
    }
    lines = [f'"{c}": {values[c]}' for c in components]
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode()


def sign(
    key: bytes, method: str, path: str, query: str, body: bytes, nonce: str, created: int
) -> dict[str, str]:
    """The headers a partner adds to a request (the reference signer: docs and tests)."""
    components = ("@method", "@path", "@query", "content-digest")
    params = (
        "(" + " ".join(f'"{c}"' for c in components) + ")"
        f';created={created};nonce="{nonce}";alg="{SIGNATURE_ALGORITHM}"'
    )
    digest = content_digest(body)
    base = signature_base(components, method, path, query, digest, params)
    value = base64.b64encode(hmac.digest(key, base, "sha256")).decode()
    return {
        "content-digest": digest,
        "signature-input": f"sig1={params}",
        "signature": f"sig1=:{value}:",
    }


def verify_request(
    request: SignedRequest, key: bytes, now: float, skew_seconds: int
) -> RequestProof:
    """The nonce and creation time the partner signed, if the signature covers this very
    method, path, query and body; raises BadSignature or StaleRequest. The caller must
    still check the nonce was never used."""
    if not (request.signature_input and request.signature and request.content_digest):
        raise BadSignature(
            "Sign the request: Content-Digest, Signature-Input and Signature (RFC 9421)."
        )
    parsed = _SIGNATURE_INPUT.match(request.signature_input)
    signed = _SIGNATURE.match(request.signature)
    if parsed is None or signed is None or parsed["label"] != signed["label"]:
        raise BadSignature("Signature-Input or Signature is malformed.")
    components = parsed["components"].split()
    listed = [c.strip('"') for c in components]
    if len(set(listed)) != len(listed) or set(listed) != COVERED:
        raise BadSignature(f"The signature must cover exactly {', '.join(sorted(COVERED))}.")
    params: dict[str, str] = {}
    for name, value in _PARAM.findall(parsed["params"]):
        if name in params or name not in _PARAMS_ALLOWED:
            raise BadSignature(f"Signature parameter {name!r} is repeated or unknown.")
        params[name] = value
    nonce, created = params.get("nonce", "").strip('"'), params.get("created", "")
    if not _NONCE.match(nonce) or not created.isdigit():
        raise BadSignature(
            "The signature needs created=<unix time> and a nonce of 16-100 URL-safe characters."
        )
    if params.get("alg", f'"{SIGNATURE_ALGORITHM}"') != f'"{SIGNATURE_ALGORITHM}"':
        raise BadSignature(f"The signature's alg must be {SIGNATURE_ALGORITHM}.")
    digest = content_digest(request.body)
    if not hmac.compare_digest(request.content_digest, digest):
        raise BadSignature("Content-Digest does not match the body.")
    base = signature_base(
        listed, request.method, request.path, request.query, digest, parsed["params"]
    )
    expected = hmac.digest(key, base, "sha256")
    try:
        given = base64.b64decode(signed["value"], validate=True)
    except ValueError:
        raise BadSignature("Signature is not base64.") from None
    if not hmac.compare_digest(given, expected):
        raise BadSignature("The signature does not match this request.")
    check_fresh(int(created), now, skew_seconds)
    return RequestProof(nonce=nonce, created=int(created))
