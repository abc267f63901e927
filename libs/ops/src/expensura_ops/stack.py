"""`expensura run`: the local stack, provisioned the same way the tests provision theirs."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from rich.console import Console

from expensura_events.topology import SERVICES
from expensura_ops import dashboards, gateway, prometheus, traces
from expensura_ops.devstack import broker, paths, postgres
from expensura_ops.devstack.supervisor import run_stack
from expensura_ops.provision import event_signing_keys_from, master_key_from, provision
from expensura_ops.sandboxes import (
    CREDIT_BUREAU_APP,
    MESSAGING_APP,
    SMTP_SINK_MODULE,
    messaging_env,
)
from expensura_ops.sandboxes import VERIFICATION_AGENCY_APP as AGENCY_APP
from expensura_ops.stackfile import write_stack

PORT_OFFSET_ENV = "EXPENSURA_PORT_OFFSET"
AGENCY_PORT = 8190
SMTP_SINK_PORT = 8191
CREDIT_BUREAU_PORT = 8192
MESSAGING_PORT = 8193
# The sandbox bureau's published subscriber key (expensura_ops.sandboxes.credit_bureau).
CREDIT_BUREAU_KEY = "sandbox-subscriber-key"


def ports(offset: int = 0) -> list[int]:
    """Every port `expensura run` listens on, moved by the offset: the services' two
    listeners, PostgreSQL, the broker, the sandboxes, the API gateway, the trace viewer's
    two, Prometheus and the dashboards."""
    fixed = [postgres.DEFAULT_PORT, broker.DEFAULT_PORT, gateway.GATEWAY_PORT]
    fixed += [AGENCY_PORT, SMTP_SINK_PORT, CREDIT_BUREAU_PORT, MESSAGING_PORT]
    fixed += [traces.TRACES_PORT, traces.TRACES_GRPC_PORT]
    fixed += [prometheus.PROMETHEUS_PORT, dashboards.DASHBOARDS_PORT]
    fixed += [p for s in SERVICES for p in (s.port, s.internal_port)]
    return [p + offset for p in fixed]


@dataclasses.dataclass(frozen=True)
class _TraceViewer:
    processes: dict[str, tuple[list[str], dict[str, str]]]
    entries: list[tuple[str, str, str]]
    ports: dict[str, int]
    ui_url: str | None = None  # where `/redirects/traces/<trace id>` opens a trace


def _trace_viewer(var: Path, offset: int) -> _TraceViewer:
    """Phoenix, and every process of the stack exporting to it; or the user's own collector
    (OTEL_EXPORTER_OTLP_ENDPOINT given: nothing started). Sets the exporter variables in
    os.environ, which every process of the stack inherits (the gateway's Caddy too)."""
    if given := os.environ.get(traces.ENDPOINT_ENV):
        entry = ("traces", given, f"from ${traces.ENDPOINT_ENV}: the trace id is the request id")
        return _TraceViewer({}, [entry], {})
    if not traces.installed():
        note = "none: `make install-traces` installs the viewer (`make run` does)"
        return _TraceViewer({}, [("traces", "", note)], {})
    port = traces.TRACES_PORT + offset
    grpc_port = traces.TRACES_GRPC_PORT + offset
    base = traces.url(port)
    os.environ[traces.ENDPOINT_ENV] = base
    os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"  # Caddy's default, stated
    entry = (
        "traces",
        base,
        f"Phoenix (OTLP/HTTP {base}/v1/traces, gRPC {traces.HOST}:{grpc_port}); "
        f"a request's trace: {traces.trace_link(base, '<X-Request-Id>')}",
    )
    return _TraceViewer(
        {"traces": traces.process(var, port, grpc_port)},
        [entry],
        {"traces": port, "traces (gRPC)": grpc_port},
        ui_url=base,
    )


def run_local_stack() -> int:
    """Start PostgreSQL, the broker, the five services and the API gateway; block until
    Ctrl-C."""
    # Every port moves by the offset, so a second stack (or a test) can run beside the first.
    offset = int(os.environ.get(PORT_OFFSET_ENV, "0"))
    services = [dataclasses.replace(s, port=s.port + offset) for s in SERVICES]
    var = paths.var_dir()
    gateway_port = gateway.GATEWAY_PORT + offset
    # The app's only door, first: a mobile developer needs this line and the CA, not the rest.
    Console(highlight=False).print(
        f"[bold]API gateway (the app's only door): {gateway.url(gateway_port)}[/bold]\n"
        f"  TLS from a local CA; trust its root (written at the gateway's first start): "
        f"{gateway.root_certificate(var)}\n"
        f"  merged API document: {gateway.url(gateway_port)}/openapi.json",
        soft_wrap=True,
    )
    viewer = _trace_viewer(var, offset)
    for _, where, notes in viewer.entries:  # where a request's trace opens, whole
        Console(highlight=False).print(f"Traces: {where or 'none'}; {notes}", soft_wrap=True)
    # The services believe X-Forwarded-For from the gateway's address alone.
    dialing_from = gateway.dial_from()
    master_key = master_key_from(var)
    signing_keys = event_signing_keys_from(var)

    agency_port = AGENCY_PORT + offset
    smtp_port = SMTP_SINK_PORT + offset
    bureau_port = CREDIT_BUREAU_PORT + offset
    messaging_port = MESSAGING_PORT + offset
    # Prometheus scraping the internal listeners, and deploy/dashboards/*.json from it
    dash_processes, dash_entries, dash_ports = dashboards.local_processes(
        var,
        offset,
        {s.name.value: s.internal_port for s in services},
        dashboards.checkout_dashboards(),
        traces_ui_url=viewer.ui_url,
    )
    for _, where, notes in dash_entries[:1]:  # ops' first stop: the dashboards
        Console(highlight=False).print(f"Dashboards: {where}; {notes}", soft_wrap=True)

    def provision_local(admin_url: str, bootstrap: str) -> dict[str, dict[str, str]]:
        env = asyncio.run(
            provision(
                admin_url,
                bootstrap,
                master_key=master_key,
                event_signing_keys=signing_keys,
                ports={s.name.value: s.port for s in services},
                internal_ports={s.name.value: s.internal_port for s in services},
                extra_env={
                    "EXPENSURA_VERIFICATION_AGENCY_URL": f"http://127.0.0.1:{agency_port}",
                    "EXPENSURA_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
                    "EXPENSURA_CREDIT_BUREAU_URL": f"http://127.0.0.1:{bureau_port}",
                    "EXPENSURA_CREDIT_BUREAU_KEY": CREDIT_BUREAU_KEY,
                    "EXPENSURA_FORWARDED_ALLOW_IPS": dialing_from,
                }
                | messaging_env(f"http://127.0.0.1:{messaging_port}"),
            )
        )
        write_stack(var, env)
        return env

    try:
        return run_stack(
            provision_local,
            extra_processes=viewer.processes
            | {
                # the API gateway: the deployment's Caddyfile, TLS from Caddy's local CA
                "api-gateway": gateway.process(
                    var,
                    gateway_port,
                    {s.name.value: s.port for s in services},
                    dialing_from=dialing_from,
                ),
                # the sandbox real-name verification agency identity calls (USE-1)
                "verification-agency": (
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        AGENCY_APP,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(agency_port),
                        "--no-access-log",
                    ],
                    {},
                ),
                # the sandbox credit bureau loans pulls reports from (USE-2)
                "credit-bureau": (
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        CREDIT_BUREAU_APP,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(bureau_port),
                        "--no-access-log",
                    ],
                    {},
                ),
                # the sandbox push, SMS and letter providers incident's notices use (USE-10)
                "messaging": (
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        MESSAGING_APP,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(messaging_port),
                        "--no-access-log",
                    ],
                    {},
                ),
                # the SMTP sink every service mails to: messages land in var/mail (Maildir)
                "smtp-sink": (
                    [
                        sys.executable,
                        "-m",
                        SMTP_SINK_MODULE,
                        "--port",
                        str(smtp_port),
                        "--maildir",
                        str(var / "mail"),
                    ],
                    {},
                ),
            }
            | dash_processes,
            entries=[
                (
                    "api-gateway",
                    gateway.url(gateway_port),
                    "the app's only door: /v1 routes, merged /openapi.json; "
                    f"local CA root {gateway.root_certificate(var)}",
                ),
                *dash_entries,
                *viewer.entries,
            ],
            extra_ports={"api-gateway": gateway_port} | dash_ports | viewer.ports,
            services=services,
            postgres_port=postgres.DEFAULT_PORT + offset,
            broker_port=broker.DEFAULT_PORT + offset,
        )
    except RuntimeError as exc:
        Console(stderr=True).print(f"[red]expensura run: {exc}")
        return 1
