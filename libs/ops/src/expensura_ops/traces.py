"""The trace viewer of the local stack: Arize Phoenix, from its own venv (`.venv-traces/`,
`make install-traces`, requirements-traces.lock), never the services' venv.

`make run` starts it as one more supervised process when no OTEL_EXPORTER_OTLP_ENDPOINT is
given, and points every process (services, sandboxes, the API gateway's Caddy) at it:
Phoenix takes OTLP/HTTP at `/v1/traces` on its UI port, stores spans in SQLite under
var/traces, and opens a trace by its id at `/redirects/traces/<trace id>`. The gateway's
request id is the trace id, so an operator goes from a request id to its whole trace in one
click.

This file is also Phoenix's launcher: `make run` runs it with the traces venv's Python
(`python -P traces.py serve`), where it only imports the standard library at the top.
Phoenix binds its gRPC receiver to every interface and has no setting for it; the launcher
binds it to loopback, as the UI/HTTP port is (PHOENIX_HOST), and keeps Phoenix's access log
quiet (a line per span export would drown the stack's log).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

TRACES_PORT = 8196  # Phoenix's UI and OTLP/HTTP receiver (its default 6006)
TRACES_GRPC_PORT = 8197  # its OTLP/gRPC receiver (its default 4317)
HOST = "127.0.0.1"
ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"


def venv() -> Path:
    """The traces venv, in the checkout this package is installed from."""
    return Path(__file__).resolve().parents[4] / ".venv-traces"


def installed() -> bool:
    return (venv() / ".installed").is_file()


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def trace_link(base: str, trace_id: str) -> str:
    """Where a trace (a request id the gateway answered with) opens in Phoenix."""
    return f"{base}/redirects/traces/{trace_id}"


def working_dir(var: Path) -> Path:
    return var / "traces"


def process(var: Path, port: int, grpc_port: int) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the local Phoenix: loopback only, state in var/traces, nothing
    sent to the internet, its own tracing and assistant off."""
    env = {
        "PHOENIX_HOST": HOST,
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(working_dir(var)),
        # no telemetry pixels, web fonts or downloads: Phoenix makes no request of its own
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        # an operator's viewer: no LLM assistant, no MCP server
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
        "PHOENIX_AGENTS_DISABLE_BASH": "true",
        "PHOENIX_ENABLE_MCP_SERVER": "false",
        # the stack's exporter settings are not Phoenix's: it traces nothing of its own
        ENDPOINT_ENV: "",
        "OTEL_SDK_DISABLED": "true",
        # its schema's SQL on a first start is not for the stack's log
        "PHOENIX_LOG_MIGRATIONS": "false",
        # nor its libraries' deprecation warnings (SQLAlchemy's, at every start)
        "PYTHONWARNINGS": "ignore",
        "PYTHONUNBUFFERED": "1",
    }
    python = venv() / "bin" / "python"
    return [str(python), "-P", str(Path(__file__).resolve()), "serve"], env


def _serve() -> None:
    """Phoenix's `phoenix serve`, its gRPC receiver on loopback (run in the traces venv)."""
    from grpc.aio import _server
    from phoenix.server.main import main
    from uvicorn.config import Config

    configure_logging = Config.configure_logging

    def without_access_log(self: Config) -> None:
        # no line for every span export: they would drown the stack's own log
        configure_logging(self)
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)

    Config.configure_logging = without_access_log  # type: ignore[method-assign]

    add_insecure_port = _server.Server.add_insecure_port

    def on_loopback(self: object, address: str) -> int:
        return int(add_insecure_port(self, address.replace("[::]:", f"{HOST}:", 1)))

    _server.Server.add_insecure_port = on_loopback
    sys.argv = ["phoenix", "serve"]
    main()


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"] or not os.environ.get("PHOENIX_PORT"):
        print("usage: (traces venv) python -P traces.py serve", file=sys.stderr)
        sys.exit(2)
    _serve()
