"""Partner authentication, the use cases: issue a token (and its request key) for a client's
credentials, and authenticate a data request (a valid token, a signature by the token's key
over this very request, a fresh timestamp, an unused nonce)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import jwt
import structlog

from expensura_events.cipher import REQUEST_SIGNING, TOKEN_KEYS
from expensura_events.envelope import utcnow
from expensura_events.retention import Expiry
from expensura_events.runtime import ServiceRuntime
from expensura_events.signing import SigningKeys
from expensura_sharing_gateway.partner_auth import store
from expensura_sharing_gateway.partner_auth.domain import (
    ALGORITHM,
    AUDIENCE,
    BAD_CLIENT,
    BadSignature,
    InvalidClient,
    Partner,
    Replayed,
    SignedRequest,
    StaleRequest,
    check_client,
    grant,
    partner_of,
    request_key,
    token_claims,
    verify_request,
)
from expensura_sharing_gateway.settings import GatewaySettings, gateway_settings
from expensura_sharing_gateway.tables import partner_signing_keys

# Refused partner requests, by reason and partner (never a subject or a body): an operator
# sees a replay or a forged request as the internal routes' refusals are seen.
_refusals = structlog.get_logger("expensura.partners")


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    request_key: str  # base64url; signs the token's data requests


async def signing_keys(rt: ServiceRuntime) -> SigningKeys:
    """Private halves wrapped by the gateway's token-keys secret from the key store."""
    return SigningKeys(
        rt.engine,
        await rt.secrets.key_wrap(TOKEN_KEYS),
        partner_signing_keys,
        usage="partner-token",
    )


async def issue_token(
    rt: ServiceRuntime, client_id: str, client_secret: str, scope: str
) -> IssuedToken:
    """Client credentials grant: a short-lived token for the scopes (purposes) asked, within
    what the credential allows."""
    now = utcnow()
    async with rt.engine.connect() as conn:
        found = await store.client(conn, client_id)
    if found is None:
        raise InvalidClient(BAD_CLIENT)
    credential, secret_hash, kind, registered = found
    check_client(credential, secret_hash, client_secret, now, registered=registered)
    scopes = grant(credential.scopes, scope)
    ttl = gateway_settings(rt).partner_token_ttl_seconds
    claims = token_claims(credential, kind, scopes, now, ttl)
    key = await (await signing_keys(rt)).active()
    signed = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    request_signing = request_key(await rt.secrets.get(REQUEST_SIGNING), claims["jti"])
    return IssuedToken(
        access_token=signed,
        expires_in=ttl,
        scope=claims["scope"],
        request_key=base64.urlsafe_b64encode(request_signing).decode().rstrip("="),
    )


async def authenticate(rt: ServiceRuntime, raw_token: str, request: SignedRequest) -> Partner:
    """The calling partner. Raises InvalidClient, BadSignature, StaleRequest or Replayed, each
    logged as `partner_request_refused`; a request that fails here has done nothing but use
    its nonce."""
    try:
        claims = await _verified_claims(rt, raw_token)
    except InvalidClient as exc:
        _refused(request, exc, None)
        raise
    try:
        key = request_key(await rt.secrets.get(REQUEST_SIGNING), claims["jti"])
        proof = verify_request(
            request, key, time.time(), gateway_settings(rt).request_clock_skew_seconds
        )
        async with rt.engine.begin() as conn:
            # Revocation takes effect at once, even for tokens issued before it.
            if await store.is_revoked(conn, claims["client_id"]):
                raise InvalidClient("The credential behind this token was revoked.")
            if not await store.use_nonce(conn, claims["sub"], proof.nonce, utcnow()):
                raise Replayed("This request's nonce was used before; nothing was done.")
    except (InvalidClient, BadSignature, StaleRequest, Replayed) as exc:
        _refused(request, exc, claims["sub"])
        raise
    return partner_of(claims)


async def _verified_claims(rt: ServiceRuntime, raw_token: str) -> dict[str, Any]:
    jwks = await (await signing_keys(rt)).jwks()
    keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(jwks).keys}
    try:
        kid = jwt.get_unverified_header(raw_token).get("kid")
        if kid not in keys:
            raise jwt.InvalidTokenError("unknown key")
        claims: dict[str, Any] = jwt.decode(
            raw_token, keys[kid], algorithms=[ALGORITHM], audience=AUDIENCE, issuer=AUDIENCE
        )
    except jwt.PyJWTError as exc:
        raise InvalidClient(f"The token was refused: {exc}.") from None
    if not isinstance(claims.get("jti"), str):
        raise InvalidClient("The token was refused: it names no request key.")
    return claims


def _refused(request: SignedRequest, exc: Exception, partner_id: str | None) -> None:
    _refusals.warning(
        "partner_request_refused",
        method=request.method,
        path=request.path,
        partner=partner_id,
        reason=type(exc).__name__,
    )


def retention(settings: GatewaySettings) -> list[Expiry]:
    """The gateway's working rows that expire: used nonces (ServiceDefinition.retention)."""
    return [store.nonce_expiry(settings.nonce_retention_seconds)]
