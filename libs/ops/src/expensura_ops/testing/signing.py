"""A partner's request signer, as a partner writes one from docs/security.md: HTTP Message
Signatures (RFC 9421) style, HMAC-SHA256 with the request key the gateway issued with the
token, over the method, path, query, `Content-Digest` (RFC 9530), a nonce and a time.

Written apart from the gateway's verifier (this harness imports no service), so the tests
also show the documented scheme can be implemented from its description.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Generator
from urllib.parse import urlsplit

import httpx
import requests
from requests.auth import AuthBase

COMPONENTS = ("@method", "@path", "@query", "content-digest")


def decode_key(request_key: str) -> bytes:
    return base64.urlsafe_b64decode(request_key + "=" * (-len(request_key) % 4))


def signature_headers(
    key: bytes,
    method: str,
    path: str,
    query: str,
    body: bytes,
    *,
    nonce: str | None = None,
    created: int | None = None,
) -> dict[str, str]:
    """Content-Digest, Signature-Input and Signature for one request (path and query as
    sent on the wire, the query without its "?")."""
    digest = f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"
    params = (
        "(" + " ".join(f'"{c}"' for c in COMPONENTS) + ")"
        f";created={int(time.time()) if created is None else created}"
        f';nonce="{nonce or secrets.token_urlsafe(18)}";alg="hmac-sha256"'
    )
    base = "\n".join(
        (
            f'"@method": {method.upper()}',
            f'"@path": {path or "/"}',
            f'"@query": ?{query}',
            f'"content-digest": {digest}',
            f'"@signature-params": {params}',
        )
    )
    mac = base64.b64encode(hmac.digest(key, base.encode(), "sha256")).decode()
    return {
        "content-digest": digest,
        "signature-input": f"sig1={params}",
        "signature": f"sig1=:{mac}:",
    }


class PartnerAuth(httpx.Auth):
    """httpx: the bearer token, and each request signed as it is sent (a fresh nonce)."""

    requires_request_body = True

    def __init__(self, token: str, key: bytes) -> None:
        self.token, self.key = token, key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path, _, query = request.url.raw_path.decode("ascii").partition("?")
        request.headers["authorization"] = f"Bearer {self.token}"
        request.headers.update(
            signature_headers(self.key, request.method, path, query, request.content)
        )
        yield request


class PartnerRequestsAuth(AuthBase):
    """requests (schemathesis' client): the same, on the prepared request."""

    def __init__(self, token: str, key: bytes) -> None:
        self.token, self.key = token, key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(r.url or "")
        body = r.body.encode() if isinstance(r.body, str) else r.body
        if not isinstance(body, bytes | None):
            raise TypeError("a streamed body cannot be signed here")
        r.headers["authorization"] = f"Bearer {self.token}"
        r.headers.update(
            signature_headers(self.key, r.method or "GET", url.path, url.query, body or b"")
        )
        return r
