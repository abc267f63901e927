"""Partner authentication, the use cases: issue a token for a client's credentials, and
authenticate a data request (a valid token, a fresh timestamp, an unused nonce)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from expensura_events.cipher import TOKEN_KEYS
from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.signing import SigningKeys
from expensura_sharing_gateway.partner_auth import store
from expensura_sharing_gateway.partner_auth.domain import (
    ALGORITHM,
    AUDIENCE,
    BAD_CLIENT,
    InvalidClient,
    Partner,
    Replayed,
    check_client,
    check_fresh,
    grant,
    partner_of,
    token_claims,
)
from expensura_sharing_gateway.settings import gateway_settings
from expensura_sharing_gateway.tables import partner_signing_keys


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


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
    return IssuedToken(access_token=signed, expires_in=ttl, scope=claims["scope"])


async def authenticate(rt: ServiceRuntime, raw_token: str, nonce: str, timestamp: int) -> Partner:
    """The calling partner. Raises InvalidClient, StaleRequest or Replayed; a request that
    fails here has done nothing but use its nonce."""
    jwks = await (await signing_keys(rt)).jwks()
    keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(jwks).keys}
    try:
        kid = jwt.get_unverified_header(raw_token).get("kid")
        if kid not in keys:
            raise jwt.InvalidTokenError("unknown key")
        claims = jwt.decode(
            raw_token, keys[kid], algorithms=[ALGORITHM], audience=AUDIENCE, issuer=AUDIENCE
        )
    except jwt.PyJWTError as exc:
        raise InvalidClient(f"The token was refused: {exc}.") from None
    check_fresh(timestamp, time.time(), gateway_settings(rt).request_clock_skew_seconds)
    async with rt.engine.begin() as conn:
        # Revocation takes effect at once, even for tokens issued before it.
        if await store.is_revoked(conn, claims["client_id"]):
            raise InvalidClient("The credential behind this token was revoked.")
        if not await store.use_nonce(conn, claims["sub"], nonce, utcnow()):
            raise Replayed("This X-Request-Nonce was used before; nothing was done.")
    return partner_of(claims)
