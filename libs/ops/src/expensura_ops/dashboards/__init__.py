"""The local dashboard viewer: deploy/dashboards/*.json (the Grafana dashboards the cluster
uses) rendered from the local Prometheus, because Grafana itself does not install here
(docs/architecture.md, "Dashboards locally")."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from expensura_ops import prometheus

DASHBOARDS_PORT = 8199


def checkout_dashboards() -> Path:
    """deploy/dashboards in the checkout this package is installed from (as the gateway
    finds its Caddyfile): the files the cluster's Grafana loads."""
    return Path(__file__).resolve().parents[5] / "deploy" / "dashboards"


def local_processes(
    var: Path,
    offset: int,
    internal_ports: Mapping[str, int],
    dashboards: Path,
    traces_ui_url: str | None = None,
) -> tuple[dict[str, tuple[list[str], dict[str, str]]], list[tuple[str, str, str]], dict[str, int]]:
    """What `expensura run` adds for the dashboards: Prometheus and the viewer as processes,
    their rows of the summary, their ports. Without a `prometheus` binary: neither, and a
    row that says how to get them. `traces_ui_url`: a traces UI for the request id → trace
    form (default: $EXPENSURA_TRACES_UI_URL, inherited)."""
    if prometheus.binary() is None:
        return (
            {},
            [("dashboards", "(off)", f"prometheus is not installed: {prometheus.INSTALL_HINT}")],
            {},
        )
    prom_port = prometheus.PROMETHEUS_PORT + offset
    port = DASHBOARDS_PORT + offset
    prom_url = prometheus.url(prom_port)
    viewer = [sys.executable, "-m", "expensura_ops.dashboards.app", "--port", str(port)]
    env = {"EXPENSURA_PROMETHEUS_URL": prom_url, "EXPENSURA_DASHBOARDS_DIR": str(dashboards)}
    if traces_ui_url:
        env["EXPENSURA_TRACES_UI_URL"] = traces_ui_url
    processes = {
        "prometheus": prometheus.process(var, prom_port, internal_ports),
        "dashboards": (viewer, env),
    }
    entries = [
        (
            "dashboards",
            f"http://127.0.0.1:{port}",
            "deploy/dashboards/*.json (service overview, event pipeline, privacy "
            "operations), from the Prometheus below",
        ),
        (
            "prometheus",
            prom_url,
            f"scrapes each service's internal /metrics every {prometheus.SCRAPE_INTERVAL}; "
            f"deploy/prometheus/alerts.yml at /alerts; data in {var / 'prometheus'}",
        ),
    ]
    return processes, entries, {"prometheus": prom_port, "dashboards": port}
