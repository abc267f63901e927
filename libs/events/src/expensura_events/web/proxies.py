"""Which proxy may tell a service who its client is.

A service sees the client's address as the TCP peer. Behind a gateway, every peer is the
gateway, so the per-client sign-in throttle would become one global lock-out; the gateway
forwards the real address in X-Forwarded-For. uvicorn believes that header from the
addresses in `forwarded_allow_ips` (its default: 127.0.0.1, or $FORWARDED_ALLOW_IPS), so
anyone on the host could name any client address. Here the trusted gateways come only from
the service's settings (`EXPENSURA_FORWARDED_ALLOW_IPS`), and with none configured no proxy
header is believed at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, cast

from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from expensura_events.settings import ListenerSettings
from expensura_events.web.ratelimit import ThroughGateway


class UntrustworthyProxySetting(ValueError):
    """`forwarded_allow_ips` names something other than addresses or networks."""


def trusted_gateways(setting: str | None) -> list[str]:
    """The gateways named by the setting, each an IP address or network. A wildcard is
    refused: trusting every peer lets any client choose its own address."""
    names = [n.strip() for n in (setting or "").split(",") if n.strip()]
    for name in names:
        try:
            ipaddress.ip_network(name, strict=False)
        except ValueError:
            raise UntrustworthyProxySetting(
                f"EXPENSURA_FORWARDED_ALLOW_IPS: {name!r} is not an address or network"
            ) from None
    return names


def uvicorn_proxy_options(settings: ListenerSettings) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.Config` (or `uvicorn.run`) that make the service
    believe X-Forwarded-For/-Proto from the configured gateways only, and from no one when
    none is configured. Raises UntrustworthyProxySetting."""
    gateways = trusted_gateways(settings.forwarded_allow_ips)
    if not gateways:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(gateways)}


def uvicorn_proxy_args(settings: ListenerSettings) -> list[str]:
    """The same as command-line arguments of `python -m uvicorn`."""
    options = uvicorn_proxy_options(settings)
    if not options["proxy_headers"]:
        return ["--no-proxy-headers"]
    return ["--proxy-headers", "--forwarded-allow-ips", options["forwarded_allow_ips"]]


def behind_gateways(app: ASGIApp, options: Mapping[str, Any]) -> ASGIApp:
    """The public listener's app with `uvicorn_proxy_options` applied here rather than by
    uvicorn, so that ThroughGateway sees the TCP peer before the forwarded client replaces
    it (the per-client rate limit applies to what came through a gateway, web/ratelimit.py).
    Serve the result with `proxy_headers=False`."""
    if not options.get("proxy_headers"):
        return app
    gateways = trusted_gateways(options.get("forwarded_allow_ips"))
    # uvicorn and Starlette spell the ASGI types differently; the callables are the same.
    forwarded = ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=gateways)
    return ThroughGateway(cast(ASGIApp, forwarded), gateways)
