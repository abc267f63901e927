"""Partner authentication: OAuth2 client credentials (RFC 6749 §4.4), scopes per purpose,
and replay protection on every data request (a nonce used once, a timestamp within 5 min).

Access tokens are EdDSA JWTs signed with the gateway's own key: only the gateway accepts
them, for at most five minutes.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Header, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from expensura_events.cipher import MasterKey
from expensura_events.envelope import utcnow
from expensura_events.fields import Identifier, Secret
from expensura_events.signing import SigningKeys
from expensura_events.web.auth import Runtime
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.tables import (
    partner_credentials,
    partner_signing_keys,
    partners,
    request_nonces,
)

router = APIRouter(tags=["partner authentication"])
hasher = PasswordHasher()
TOKEN_TTL = 300
CLOCK_SKEW = 300
AUDIENCE = "expensura-sharing-gateway"
# RFC 6749 §3.3: space-separated scope tokens of printable ASCII except '"' and '\\'.
SCOPE = r"^[!#-\[\]-~ ]*$"


class InvalidClient(Problem):
    status, title = 401, "Invalid client"


class Replayed(Problem):
    status, title = 409, "Replayed request"


class StaleRequest(Problem):
    status, title = 401, "Request timestamp outside the allowed window"


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


class Partner(BaseModel):
    partner_id: str
    kind: str
    scopes: frozenset[str]


def signing_keys(rt: Any) -> SigningKeys:
    return SigningKeys(
        rt.engine,
        MasterKey.from_base64(rt.settings.master_key),
        partner_signing_keys,
        usage="partner-token",
    )


@router.post("/oauth/token", responses={401: {}})
async def token(
    rt: Runtime,
    grant_type: Annotated[str, Form(pattern="^client_credentials$")],
    client_id: Annotated[Identifier, Form(min_length=3, max_length=100)],
    client_secret: Annotated[Secret, Form(min_length=10)],
    scope: Annotated[str, Form(max_length=500, pattern=SCOPE)] = "",
) -> TokenResponse:
    """Client credentials grant: a short-lived token for the scopes (purposes) asked, within
    what the credential allows."""
    now = utcnow()
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(partner_credentials, partners.c.kind)
                .join(partners, partners.c.partner_id == partner_credentials.c.partner_id)
                .where(partner_credentials.c.client_id == client_id)
            )
        ).one_or_none()
    ok = False
    if row is not None:
        try:
            ok = hasher.verify(row.secret_hash, client_secret)
        except (VerificationError, InvalidHashError):
            ok = False
    if row is None or not ok or row.revoked_at is not None or row.expires_at <= now:
        raise InvalidClient("Unknown client, wrong secret, or a revoked or expired credential.")
    granted = set(row.scopes)
    asked = set(scope.split()) if scope else granted
    if not asked <= granted:
        raise InvalidClient(f"Scopes not granted: {', '.join(sorted(asked - granted))}.")
    key = await signing_keys(rt).active()
    claims = {
        "iss": AUDIENCE,
        "aud": AUDIENCE,
        "sub": row.partner_id,
        "kind": row.kind,
        "client_id": client_id,
        "scope": " ".join(sorted(asked)),
        "iat": now,
        "exp": now + timedelta(seconds=TOKEN_TTL),
    }
    signed = jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
    return TokenResponse(access_token=signed, expires_in=TOKEN_TTL, scope=claims["scope"])


async def partner(
    request: Request,
    rt: Runtime,
    x_request_nonce: Annotated[
        str, Header(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    ],
    x_request_timestamp: Annotated[int, Header(ge=0, le=2**40)],
) -> Partner:
    """The calling partner: a valid gateway token, a fresh timestamp, an unused nonce."""
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw:
        raise InvalidClient("Send a gateway access token (POST /oauth/token).")
    jwks = await signing_keys(rt).jwks()
    keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(jwks).keys}
    try:
        kid = jwt.get_unverified_header(raw).get("kid")
        if kid not in keys:
            raise jwt.InvalidTokenError("unknown key")
        claims = jwt.decode(
            raw, keys[kid], algorithms=["EdDSA"], audience=AUDIENCE, issuer=AUDIENCE
        )
    except jwt.PyJWTError as exc:
        raise InvalidClient(f"The token was refused: {exc}.") from None
    if abs(time.time() - x_request_timestamp) > CLOCK_SKEW:
        raise StaleRequest("X-Request-Timestamp must be within five minutes of now.")
    async with rt.engine.begin() as conn:
        # Revocation takes effect at once, even for tokens issued before it.
        cred = (
            await conn.execute(
                select(partner_credentials.c.revoked_at).where(
                    partner_credentials.c.client_id == claims["client_id"]
                )
            )
        ).one_or_none()
        if cred is None or cred.revoked_at is not None:
            raise InvalidClient("The credential behind this token was revoked.")
        seen = await conn.execute(
            insert(request_nonces)
            .values(partner_id=claims["sub"], nonce=x_request_nonce, seen_at=utcnow())
            .on_conflict_do_nothing()
        )
        if seen.rowcount != 1:
            raise Replayed("This X-Request-Nonce was used before; nothing was done.")
    return Partner(
        partner_id=claims["sub"], kind=claims["kind"], scopes=frozenset(claims["scope"].split())
    )


CurrentPartner = Annotated[Partner, Depends(partner)]
