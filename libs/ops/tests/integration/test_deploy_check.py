"""`make deploy-check` passes on the repo's deployment and fails on each kind of broken one.

Each broken case copies deploy/ to a temporary folder, breaks one thing the way a person
editing it could, and requires the check to name that thing.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expensura_ops import deploysecrets
from expensura_ops.deploycheck import gateway, metrics, run
from expensura_ops.deploycheck.kustomize import build, config_map_hash, identity

REPO = Path(__file__).resolve().parents[4]
DEPLOY = REPO / "deploy"


@pytest.fixture
def broken(tmp_path: Path) -> Callable[[str, str, str], Path]:
    """A copy of deploy/ with `old` replaced by `new` (exactly once) in one file."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)

    def edit(relative: str, old: str, new: str) -> Path:
        path = copy / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} must occur once in {relative}"
        path.write_text(text.replace(old, new))
        return copy

    return edit


def _problems(deploy: Path) -> list[str]:
    return run(REPO, deploy).problems


def test_the_repos_deployment_passes() -> None:
    report = run(REPO)
    assert report.problems == []
    assert len(report.checked) >= 5


def test_make_deploy_check_command_exits_0_on_the_repo_and_1_on_a_broken_copy(
    broken: Callable[[str, str, str], Path],
) -> None:
    command = [sys.executable, "-m", "expensura_ops.deploycheck", str(REPO)]
    ok = subprocess.run(command, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout
    assert "deploy-check passed" in ok.stdout
    copy = broken("k8s/base/services/loans.yaml", "replicas: 2", "replicas: two")
    bad = subprocess.run([*command, str(copy)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "FAIL  k8s/overlays/production: Deployment/loans: spec.replicas" in bad.stdout


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        pytest.param(
            "k8s/base/services/consent.yaml",
            "          periodSeconds: 5\n",
            '          periodSeconds: "often"\n',
            "Deployment/consent: spec.template.spec.containers.0.readinessProbe.periodSeconds",
            id="wrong field type in a Kubernetes object",
        ),
        pytest.param(
            "k8s/base/services/incident.yaml",
            "  revisionHistoryLimit: 5\n",
            "  revisionHistoryLimit: 5\n  maxReplicas: 3\n",
            "Deployment/incident: spec: Additional properties are not allowed ('maxReplicas'",
            id="unknown field in a Kubernetes object",
        ),
        pytest.param(
            "k8s/base/platform/kafka-topics.yaml",
            "  topicName: expensura.loans.events\n  partitions: 8\n",
            "  topicName: expensura.loans.events\n  partition: 8\n",
            "KafkaTopic/expensura.loans.events: spec: Additional properties are not allowed "
            "('partition'",
            id="unknown field in a custom resource",
        ),
        pytest.param(
            "k8s/base/platform/kafka.yaml",
            "        size: 10Gi\n",
            "        size: 10\n",
            'KafkaNodePool/controller: spec.storage.volumes.0.size: 10 is not of type "string"',
            id="wrong field type in a custom resource",
        ),
        pytest.param(
            "k8s/base/platform/postgres.yaml",
            "  name: expensura_loans\n  owner: expensura_owner\n  cluster:\n    name: postgres\n",
            "  name: expensura_loans\n  owner: expensura_owner\n",
            'Database/expensura-loans: spec: "cluster" is a required property',
            id="missing required field in a custom resource",
        ),
        pytest.param(
            "k8s/base/gateway/partner-gateway.yaml",
            "  selector:\n    matchLabels:\n      app.kubernetes.io/name: partner-gateway\n"
            "  strategy:",
            "  strategy:",
            'Deployment/partner-gateway: spec: "selector" is a required property',
            id="missing required field in a Kubernetes object",
        ),
        pytest.param(
            "k8s/base/platform/kafka-users.yaml",
            "apiVersion: kafka.strimzi.io/v1\nkind: KafkaUser\nmetadata:\n  name: provision",
            "apiVersion: kafka.strimzi.io/v1beta3\nkind: KafkaUser\nmetadata:\n  name: provision",
            "KafkaUser/provision: no schema for kafka.strimzi.io/v1beta3 KafkaUser",
            id="a kind with no schema",
        ),
    ],
)
def test_schema_problems_are_named(
    broken: Callable[[str, str, str], Path], relative: str, old: str, new: str, expected: str
) -> None:
    problems = _problems(broken(relative, old, new))
    assert any(expected in p for p in problems), problems


GATEWAY_ON_INTERNAL = """---
# Looks harmless: lets the gateway reach consent's internal port.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: consent-from-gateway
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: consent
  policyTypes: [Ingress]
  ingress:
    - ports:
        - port: 8081
      from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/component: gateway
"""


def test_a_policy_opening_internal_to_the_gateway_fails(
    broken: Callable[[str, str, str], Path],
) -> None:
    copy = broken(
        "k8s/base/platform/default-deny.yaml",
        "policyTypes: [Ingress]\n",
        "policyTypes: [Ingress]\n" + GATEWAY_ON_INTERNAL,
    )
    problems = _problems(copy)
    assert any(
        "service consent: its internal port is reachable from ['api-gateway', 'partner-gateway']"
        in p
        for p in problems
    ), problems


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        pytest.param(
            "k8s/base/services/identity.yaml",
            "    # internal: the other four services, Prometheus and the provisioning Job.\n"
            "    - ports:\n        - port: internal\n          protocol: TCP\n      from:\n",
            "    # internal: the other four services, Prometheus and the provisioning Job.\n"
            "    - ports:\n        - port: internal\n          protocol: TCP\n      from:\n"
            "        - namespaceSelector: {}\n",
            'service identity: its internal port is reachable from ["namespace:{}"]'.replace(
                '"', "'"
            ),
            id="internal port opened to every namespace",
        ),
        pytest.param(
            "k8s/base/services/loans.yaml",
            "    - ports:\n        - port: http\n          protocol: TCP\n      from:\n"
            "        - podSelector:\n            matchLabels:\n"
            "              app.kubernetes.io/name: api-gateway\n",
            "    - ports:\n        - port: http\n          protocol: TCP\n",
            "service loans: its http port is reachable from ['*']",
            id="http port opened to anyone",
        ),
        pytest.param(
            "k8s/base/platform/default-deny.yaml",
            "  podSelector: {}\n",
            "  podSelector:\n    matchLabels:\n      app.kubernetes.io/component: service\n",
            "no default-deny ingress policy",
            id="no default deny",
        ),
        pytest.param(
            "k8s/base/platform/kafka.yaml",
            "          - podSelector:\n              matchLabels:\n"
            "                app.kubernetes.io/name: provision\n",
            "          - podSelector:\n              matchLabels:\n"
            "                app.kubernetes.io/name: grafana\n",
            "listener tls: reachable from ['grafana']",
            id="Kafka listener opened to Grafana",
        ),
        pytest.param(
            "k8s/base/platform/kafka.yaml",
            "        tls: true\n",
            "        tls: false\n",
            "listener tls: must use TLS",
            id="Kafka listener without TLS",
        ),
        pytest.param(
            "k8s/base/platform/postgres.yaml",
            "        - podSelector:\n            matchLabels:\n"
            "              app.kubernetes.io/name: provision\n        - podSelector:\n"
            "            matchLabels:\n              cnpg.io/cluster: postgres\n",
            "        - podSelector:\n            matchLabels:\n"
            "              app.kubernetes.io/component: gateway\n",
            "port 5432 reachable from ['api-gateway', 'partner-gateway']",
            id="PostgreSQL opened to the gateways",
        ),
    ],
)
def test_network_problems_are_named(
    broken: Callable[[str, str, str], Path], relative: str, old: str, new: str, expected: str
) -> None:
    problems = _problems(broken(relative, old, new))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        pytest.param(
            "gateway/Caddyfile",
            "{$EXPENSURA_UPSTREAM_LOANS:loans:8080}",
            "{$EXPENSURA_UPSTREAM_LOANS:loans:8081}",
            "api gateway: /v1/loan-applications goes to loans:8081, not to a service's http port",
            id="gateway proxies to the internal port",
        ),
        pytest.param(
            "gateway/Caddyfile",
            " /v1/me/exports ",
            " ",
            "api gateway sends /v1/me/exports (identity's) to a 404 answer",
            id="a public route the gateway forgot",
        ),
        pytest.param(
            "gateway/Caddyfile",
            "@loans path /v1/loan-applications /v1/loan-applications/*",
            "@loans path /v1/loan-applications /v1/loan-applications/* /v1/disclosures",
            "api gateway routes the partner route /v1/disclosures",
            id="partner route on the app's gateway",
        ),
        pytest.param(
            "gateway/partners.Caddyfile",
            "@partner path /oauth/token /v1/disclosures /v1/inbound",
            "@partner path /oauth/token /v1/disclosures /v1/inbound /internal/*",
            "partner gateway routes /internal/log to sharing-gateway:8080; it must not",
            id="internal routes through the partner entry",
        ),
        pytest.param(
            "gateway/Caddyfile",
            "\thandle @closed {\n\t\trespond 404\n\t}\n",
            "\thandle @closed {\n\t\treverse_proxy identity:8080\n\t}\n",
            "api gateway routes /docs; it must answer 404",
            id="docs through the gateway",
        ),
        pytest.param(
            "gateway/Caddyfile",
            "\trequest_body {\n",
            "\trequest_body {{\n",
            "caddy adapt",
            id="a Caddyfile caddy cannot read",
        ),
    ],
)
def test_gateway_problems_are_named(
    broken: Callable[[str, str, str], Path], relative: str, old: str, new: str, expected: str
) -> None:
    problems = _problems(broken(relative, old, new))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        pytest.param(
            "dashboards/event-pipeline.json",
            "sum by (service, projection) (expensura_dead_letters{",
            "sum by (service, projection) (expensura_dead_letter{",
            "expensura_dead_letter is not in the metrics contract",
            id="dashboard metric outside the contract",
        ),
        pytest.param(
            "dashboards/privacy-operations.json",
            "increase(expensura_disclosures_total[$__range])",
            'increase(expensura_disclosures_total{partner_name=\\"x\\"}[$__range])',
            "expensura_disclosures_total has no label ['partner_name']",
            id="dashboard label outside the contract",
        ),
        pytest.param(
            "prometheus/alerts.yml",
            "runbook: docs/operations.md#alert-deadletters",
            "runbook: docs/operations.md#alert-dead-letters",
            "rule DeadLetters: runbook 'docs/operations.md#alert-dead-letters' is not a section",
            id="alert runbook without its section",
        ),
        pytest.param(
            "prometheus/alerts.yml",
            "expr: max by (service) (expensura_relay_lag_events) > 1000",
            "expr: max by (service) (expensura_outbox_lag) > 1000",
            "rule RelayLagHigh: expensura_outbox_lag is not in the metrics contract",
            id="alert metric outside the contract",
        ),
        pytest.param(
            "compose/compose.yaml",
            "  kafka:\n    image: apache/kafka:4.1.1\n",
            "  kafka:\n    image: apache/kafka:4.1.1\n    replicas_count: 1\n",
            "compose.yaml: services.kafka: Unevaluated properties are not allowed "
            "('replicas_count' was unexpected)",
            id="unknown key in the compose file",
        ),
        pytest.param(
            "compose/compose.yaml",
            "    image: grafana/grafana:12.2.1\n",
            "    image: grafana/grafana\n",
            "service grafana: image 'grafana/grafana' is not pinned",
            id="unpinned image in the compose file",
        ),
        pytest.param(
            "k8s/base/services/identity.yaml",
            "                  name: identity-keys\n                  key: service-key\n",
            "                  name: identity-keys\n                  key: service_key\n",
            "Deployment/identity: reads key 'service_key' of Secret identity-keys",
            id="a Secret key nothing writes",
        ),
        pytest.param(
            "k8s/base/observability/grafana.yaml",
            "            name: grafana-dashboards\n",
            "            name: grafana-dashboard\n",
            "Deployment/grafana: refers to ConfigMap grafana-dashboard, which nothing makes",
            id="a ConfigMap nothing makes",
        ),
        pytest.param(
            "k8s/overlays/staging/kustomization.yaml",
            "patches:\n",
            "commonLabels:\n  env: staging\npatches:\n",
            "fields outside the supported subset: ['commonLabels']",
            id="a kustomize field outside the subset",
        ),
    ],
)
def test_other_problems_are_named(
    broken: Callable[[str, str, str], Path], relative: str, old: str, new: str, expected: str
) -> None:
    problems = _problems(broken(relative, old, new))
    assert any(expected in p for p in problems), problems


# The pure rules the checks rest on.


def test_config_map_suffix_is_the_one_kustomize_5_writes() -> None:
    # `kubectl kustomize` (kustomize v5.5.0) names a generator with literal a=b "x-4h2mbtbbt6".
    assert config_map_hash({"a": "b"}) == "4h2mbtbbt6"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl (kustomize) here")
@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_the_overlays_render_as_kubectl_kustomize_renders_them(overlay: str) -> None:
    directory = DEPLOY / "k8s/overlays" / overlay
    done = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor=LoadRestrictionsNone", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    theirs = {identity(o): o for o in yaml.safe_load_all(done.stdout) if o}
    ours = {identity(o): o for o in build(directory, restrict_to_root=False)}
    assert ours == theirs


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/v1/me", "/v1/me", True),
        ("/v1/me", "/v1/me/consents", False),
        ("/v1/staff/*", "/v1/staff/x1/unlock", True),
        ("/v1/subjects/*/basis", "/v1/subjects/x1/basis", True),
        ("/v1/subjects/*/basis", "/v1/subjects/a/b/basis", False),
        ("/internal/*", "/INTERNAL/log", True),
    ],
)
def test_caddy_path_matching(pattern: str, path: str, matches: bool) -> None:
    assert gateway._path_matches(pattern, path) is matches


def test_code_routes_are_read_with_their_router_prefix() -> None:
    routes = {(r.owner, r.path) for r in gateway.code_routes(REPO)}
    assert ("identity", "/v1/accounts") in routes
    assert ("consent", "/internal/known-subjects/{subject_id}") in routes
    assert ("*", "/internal/log") in routes


def test_promql_metric_names_and_labels_are_found() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, service) (rate(x_bucket{status=~"5..",route!=""}'
        "[5m]))) / on (service) group_left up > bool 1"
    )
    assert metrics.metric_uses(expr) == [("x_bucket", {"status", "route"}), ("up", set())]
    # an offset's duration, literal or a variable, is no metric; the metric before it is
    counted = "(c_total unless c_total offset $__range) or increase(c_total[$__range]) offset 5m"
    assert metrics.metric_uses(counted) == [("c_total", set())] * 3
    assert metrics.check_expr("panel", "misspelt_total offset 1h")


def test_deploysecrets_makes_distinct_keys_whose_public_halves_are_published() -> None:
    services, owner, grafana = deploysecrets.new_secrets()
    objects = deploysecrets.kubernetes_objects(services, owner, grafana)
    keys = {o["metadata"]["name"]: o["stringData"] for o in objects if o["kind"] == "Secret"}
    masters = {keys[f"{s.name}-keys"]["master-key"] for s in services}
    assert len(masters) == len(services) == 5
    published = yaml.safe_load(
        next(o for o in objects if o["kind"] == "ConfigMap")["data"][
            "EXPENSURA_SERVICE_PUBLIC_KEYS"
        ]
    )
    for s in services:
        seed = base64.b64decode(keys[f"{s.name}-keys"]["service-key"])
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert published[s.name] == [base64.b64encode(raw).decode()]


def test_deploysecrets_never_replaces_existing_keys(tmp_path: Path) -> None:
    assert deploysecrets.main(["compose", str(tmp_path / "s")]) == 0
    before = (tmp_path / "s/identity.env").read_text()
    assert deploysecrets.main(["compose", str(tmp_path / "s")]) == 1
    assert (tmp_path / "s/identity.env").read_text() == before
    assert (tmp_path / "s/identity.env").stat().st_mode & 0o077 == 0
