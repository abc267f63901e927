"""var/stack.json: what `expensura run` provisioned, so operator commands find each service.

It holds local-stack credentials only; in production the same variables come from the
deployment's secrets and the commands read them from the environment instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from expensura_events.settings import ServiceSettings


def stack_file(var_dir: Path) -> Path:
    return var_dir / "stack.json"


def write_stack(var_dir: Path, env: dict[str, dict[str, str]]) -> Path:
    path = stack_file(var_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(env, indent=2))
    return path


def service_settings(
    service: str, var_dir: Path, settings_class: type[ServiceSettings] = ServiceSettings
) -> ServiceSettings:
    """Settings for operating on `service`: the environment if it names a database, else
    the local stack's file."""
    if os.environ.get("EXPENSURA_DATABASE_URL"):
        return settings_class()
    path = stack_file(var_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"no EXPENSURA_DATABASE_URL and no {path}: start the stack with `make run`, "
            "or set the service's EXPENSURA_* variables"
        )
    env = json.loads(path.read_text())
    if service not in env:
        raise KeyError(f"{service} is not in {path}")
    values: dict[str, object] = {
        k.lower().removeprefix("expensura_"): v
        for k, v in env[service].items()
        if k.startswith("EXPENSURA_")
    }
    values["service_urls"] = json.loads(env[service]["EXPENSURA_SERVICE_URLS"])
    if public_keys := env[service].get("EXPENSURA_EVENT_PUBLIC_KEYS"):
        values["event_public_keys"] = json.loads(public_keys)  # JSON, as in the environment
    values["kafka_bootstrap_servers"] = env[service]["KAFKA_BOOTSTRAP_SERVERS"]
    if published := env[service].get("EXPENSURA_SERVICE_PUBLIC_KEYS"):
        values["service_public_keys"] = json.loads(published)
    return settings_class.model_validate(values)
