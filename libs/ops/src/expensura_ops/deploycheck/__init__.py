"""`make deploy-check`: the deployment validated offline.

Renders both overlays (kustomize subset, `kustomize.py`), validates every object against
Kubernetes' JSON schemas or the repo's custom-resource schemas (`schemas.py`), evaluates the
NetworkPolicies (`policies.py`), checks that every Secret and ConfigMap referred to is made
by someone (`references.py`), follows the gateways' Caddy config for every route of the
code (`gateway.py`), checks dashboards and alert rules against the metrics contract
(`metrics.py`) and the staging compose file against the Compose Specification (`compose.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from expensura_ops.deploycheck import compose, gateway, metrics, policies, references, schemas
from expensura_ops.deploycheck.kustomize import KustomizeError, build

OVERLAYS = ("staging", "production")


@dataclass
class Report:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run(repo: Path, deploy: Path | None = None) -> Report:
    deploy = deploy or repo / "deploy"
    report = Report()
    custom = schemas.CustomSchemas(deploy / "schemas")
    for overlay in OVERLAYS:
        where = f"k8s/overlays/{overlay}"
        try:
            objects = build(deploy / where, restrict_to_root=False)
        except KustomizeError as exc:
            report.problems.append(f"{where}: {exc}")
            continue
        report.problems += [f"{where}: {p}" for p in schemas.validate_objects(objects, custom)]
        report.problems += [f"{where}: {p}" for p in policies.check(objects)]
        report.problems += [f"{where}: {p}" for p in references.check(objects)]
        report.checked.append(
            f"{where}: {len(objects)} objects rendered, validated, policies and references checked"
        )
    report.problems += [f"gateway: {p}" for p in gateway.check(repo, deploy)]
    report.checked.append("gateway/*.Caddyfile: adapted by caddy, every code route followed")
    report.problems += [f"dashboards: {p}" for p in metrics.check_dashboards(deploy / "dashboards")]
    report.problems += [
        f"prometheus: {p}"
        for p in metrics.check_alerts(deploy / "prometheus/alerts.yml", repo / "docs/operations.md")
    ]
    report.checked.append("dashboards and alert rules: metric names and labels from the contract")
    report.problems += [f"compose: {p}" for p in compose.check(deploy / "compose/compose.yaml")]
    report.checked.append("compose/compose.yaml: Compose Specification schema")
    return report
