"""HTTP clients for the calls a service makes to its peers and to outside parties.

httpx builds a new TLS context for every client it opens, loading the whole CA bundle:
10 to 20 ms of CPU each time. The services open a short-lived client per call (a disclosure
makes two, identity's answer to it a third), so under load that was a third of the sharing
gateway's CPU (py-spy, `expensura incident drill`). One context, made once, serves every
client this process opens; it trusts what httpx's own default trusts (certifi's bundle, or
SSL_CERT_FILE / SSL_CERT_DIR when set).
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def http_client(**options: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with `options` (timeout, base_url, …) and the shared TLS
    context."""
    return httpx.AsyncClient(verify=tls_context(), **options)
