"""The local Prometheus `expensura run` starts: Debian's `prometheus` binary, scraping the
five services' internal listeners (`/metrics`) every 5 s, its data under var/prometheus,
kept for a day at most, listening on 127.0.0.1 only. The deployments' own Prometheus
configuration is deploy/prometheus/; this one only differs in where the services are."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import yaml

PROMETHEUS_PORT = 8198
SCRAPE_INTERVAL = "5s"
RETENTION = "1d"
RETENTION_SIZE = "256MB"
INSTALL_HINT = "apt-get install prometheus (or `make run-tools` as root)"


def binary() -> str | None:
    return shutil.which("prometheus")


def alert_rules() -> Path:
    """deploy/prometheus/alerts.yml in the checkout this package is installed from: the
    cluster's alert rules, evaluated locally too (Prometheus' /alerts page)."""
    return Path(__file__).resolve().parents[4] / "deploy" / "prometheus" / "alerts.yml"


def config(internal_ports: Mapping[str, int], interval: str = SCRAPE_INTERVAL) -> dict[str, object]:
    """prometheus.yml: one job, one target per service (its internal listener), its `pod`
    label the service's name (the services label their own series with `service`); the
    deployment's alert rules."""
    rules = alert_rules()
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules)] if rules.is_file() else [],
        "scrape_configs": [
            {
                "job_name": "expensura",
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"pod": name}}
                    for name, port in sorted(internal_ports.items())
                ],
            }
        ],
    }


def process(
    var: Path, port: int, internal_ports: Mapping[str, int], interval: str = SCRAPE_INTERVAL
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the local Prometheus; writes its configuration."""
    state = var / "prometheus"
    (state / "data").mkdir(parents=True, exist_ok=True)
    config_file = state / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config(internal_ports, interval), sort_keys=False))
    exe = binary()
    if exe is None:
        raise RuntimeError(f"prometheus is not installed: {INSTALL_HINT}")
    return [
        exe,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={state / 'data'}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--storage.tsdb.retention.size={RETENTION_SIZE}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ], {}


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"
