"""Who is calling: access tokens issued by identity, verified by every service.

Identity signs short-lived JWTs (EdDSA) and publishes its public keys as a JWKS at
`/.well-known/jwks.json`; every other service verifies tokens against that set, fetched over
HTTP and cached, re-fetched when a token names a key it has not seen (rotation).

A key identity retires (SEC-4: a leaked key, distrusted as an incident's containment) leaves
the JWKS at once. Identity itself reads its keys from its own database at each verification,
so it refuses the key's tokens from the retirement's commit; every other service refuses
them from its next fetch, at most `cache_seconds` (300 s) later.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
from pydantic import BaseModel, ConfigDict

from expensura_events.outbound import http_client
from expensura_events.vocabulary import ActorKind

ISSUER = "expensura-identity"
AUDIENCE = "expensura"
JWKS_PATH = "/.well-known/jwks.json"


class InvalidToken(Exception):
    """Missing, malformed, expired, or signed by a key identity does not publish."""


class Principal(BaseModel):
    """The authenticated caller, as the token says."""

    model_config = ConfigDict(frozen=True)
    kind: ActorKind
    id: str
    roles: frozenset[str] = frozenset()
    mfa: bool = False  # the session passed a second factor
    session_id: str | None = None


def _keys_of(jwks: dict[str, Any]) -> dict[str, Any]:
    return {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id}


class TokenVerifier:
    def __init__(
        self,
        jwks_url: str,
        client: httpx.AsyncClient | None = None,
        cache_seconds: float = 300.0,
        source: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        """`source`: read the JWKS from it instead of over HTTP (identity, from its own
        database; with `cache_seconds=0` a retired key is refused at once)."""
        self.jwks_url = jwks_url
        self._source = source
        self._client = client
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self.cache_seconds = cache_seconds

    async def _refresh(self) -> None:
        if self._source is not None:
            self._keys = _keys_of(await self._source())
            self._fetched_at = time.monotonic()
            return
        client = self._client or http_client(timeout=5)
        try:
            resp = await client.get(self.jwks_url)
            resp.raise_for_status()
            keys = _keys_of(resp.json())
        finally:
            if self._client is None:
                await client.aclose()
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> Any:
        stale = time.monotonic() - self._fetched_at >= self.cache_seconds
        if kid not in self._keys or stale:
            await self._refresh()
        if kid not in self._keys:
            raise InvalidToken("token signed by an unknown key")
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            key = await self._key(str(header.get("kid", "")))
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if claims.get("typ") not in ("user", "staff"):
            raise InvalidToken("not an access token")
        return Principal(
            kind=ActorKind(claims["typ"]),
            id=str(claims["sub"]),
            roles=frozenset(claims.get("roles", [])),
            mfa="otp" in claims.get("amr", []),
            session_id=claims.get("sid"),
        )
