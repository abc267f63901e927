"""The staging box's compose file: against the Compose Specification's JSON schema (shipped in
the `check-jsonschema` wheel), plus what the schema cannot see: every image pinned, every
`depends_on` naming a service of the file, every mounted repo file present. Where the Docker
compose plugin exists, `docker compose config` runs too."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from expensura_ops.deploycheck.kustomize import Loader
from expensura_ops.deploycheck.schemas import package_dir


@cache
def _validator() -> Any:
    vendor = package_dir("check_jsonschema") / "builtin_schemas" / "vendor"
    return jsonschema_rs.validator_for(json.loads((vendor / "compose-spec.json").read_text()))


def check(path: Path) -> list[str]:
    try:
        doc = yaml.load(path.read_text(), Loader=Loader)
    except yaml.YAMLError as exc:
        return [f"{path.name}: not YAML: {exc}"]
    problems = [
        f"{path.name}: {'.'.join(str(p) for p in e.instance_path) or '(top)'}: {e.message}"
        for e in _validator().iter_errors(doc)
    ]
    if problems or not isinstance(doc, dict):
        return problems
    services: dict[str, Any] = doc.get("services", {})
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        if "build" not in svc and (
            ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        ):
            problems.append(f"{path.name}: service {name}: image {image!r} is not pinned")
        depends = svc.get("depends_on", [])
        for dep in depends if isinstance(depends, list) else list(depends):
            if dep not in services:
                problems.append(f"{path.name}: service {name} depends on unknown service {dep}")
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")) and not (path.parent / source).exists():
                problems.append(
                    f"{path.name}: service {name} mounts {source}, which does not exist"
                )
    problems += _docker_compose_config(path, services)
    return problems


def _docker_compose_config(path: Path, services: dict[str, Any]) -> list[str]:
    """`docker compose config` where the plugin is installed (not on the project's machines)."""
    docker = shutil.which("docker")
    if docker is None:
        return []
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        # Secrets' env files are made at deployment (expensura_ops.deploysecrets); empty ones do.
        copy = Path(tmp) / "compose"
        shutil.copytree(path.parent, copy)
        for svc in services.values():
            for env_file in svc.get("env_file", []):
                file = env_file if isinstance(env_file, str) else env_file["path"]
                (copy / file).parent.mkdir(parents=True, exist_ok=True)
                (copy / file).touch()
        done = subprocess.run(
            [docker, "compose", "-f", str(copy / path.name), "config", "--quiet"],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        return [f"{path.name}: docker compose config: {done.stderr.strip()}"]
    return []
