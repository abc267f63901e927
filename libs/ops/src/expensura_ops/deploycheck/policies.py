"""Who can reach what: the NetworkPolicies of a rendered overlay, evaluated.

Each workload (a pod template of a Deployment or Job, or the pods an operator makes for a
Kafka or PostgreSQL cluster) is checked port by port against the callers the design allows
(deploy/README.md, "Network"): a service's internal port only from the other four services,
Prometheus and the provisioning Job; its http port only from the gateways that route to it;
PostgreSQL and the Kafka listener only from the five services and the Job. The union of every
policy that selects a pod is what counts, as in Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SERVICES = ("identity", "consent", "loans", "sharing-gateway", "incident")
ANYONE = "*"  # a rule with no `from`, an ipBlock, or another namespace's pods
NAME = "app.kubernetes.io/name"


@dataclass
class Workload:
    name: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)  # container port name → number


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def workloads(objects: list[dict[str, Any]]) -> list[Workload]:
    """The pods an overlay runs, with their labels and named ports."""
    found: list[Workload] = []
    for obj in objects:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        kind = obj["kind"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = obj["spec"]["template"]
            ports = {
                p["name"]: p["containerPort"]
                for c in template["spec"]["containers"]
                for p in c.get("ports", [])
                if "name" in p
            }
            labels = template["metadata"].get("labels", {})
            found.append(Workload(meta["name"], namespace, labels, ports))
        elif kind == "Kafka":
            labels = {
                "strimzi.io/cluster": meta["name"],
                "strimzi.io/kind": "Kafka",
                "strimzi.io/name": f"{meta['name']}-kafka",
            }
            ports = {lst["name"]: lst["port"] for lst in obj["spec"]["kafka"]["listeners"]}
            found.append(Workload(f"kafka:{meta['name']}", namespace, labels, ports))
        elif kind == "Cluster" and obj["apiVersion"].startswith("postgresql.cnpg.io/"):
            labels = {"cnpg.io/cluster": meta["name"], "cnpg.io/podRole": "instance"}
            ports = {"postgresql": 5432, "status": 8000, "metrics": 9187}
            found.append(Workload(f"postgres:{meta['name']}", namespace, labels, ports))
    return found


def _peers(
    rule_peers: list[dict[str, Any]] | None, namespace: str, pods: list[Workload]
) -> set[str]:
    if not rule_peers:
        return {ANYONE}
    allowed: set[str] = set()
    for peer in rule_peers:
        if "ipBlock" in peer or "namespaceSelector" in peer:
            # Addresses and other namespaces are outside what this overlay declares.
            ns_sel = peer.get("namespaceSelector")
            allowed.add(ANYONE if "ipBlock" in peer else f"namespace:{ns_sel}")
            continue
        allowed |= {
            p.name
            for p in pods
            if p.namespace == namespace and _selects(peer["podSelector"], p.labels)
        }
    return allowed


def _port_matches(rule_ports: list[dict[str, Any]] | None, port_name: str, number: int) -> bool:
    if not rule_ports:
        return True
    return any(p.get("port") in (port_name, number) or "port" not in p for p in rule_ports)


def reachable_from(
    objects: list[dict[str, Any]], target: Workload, port_name: str, pods: list[Workload]
) -> set[str] | None:
    """Who may open `port_name` of `target`; None when no policy selects it (anyone)."""
    number = target.ports[port_name]
    selecting = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and o["metadata"].get("namespace", "") == target.namespace
        and "Ingress" in o["spec"].get("policyTypes", ["Ingress"])
        and _selects(o["spec"]["podSelector"], target.labels)
    ]
    if not selecting:
        return None
    allowed: set[str] = set()
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            if _port_matches(rule.get("ports"), port_name, number):
                allowed |= _peers(rule.get("from"), target.namespace, pods)
    return allowed


def _kafka_listener_peers(kafka: dict[str, Any], pods: list[Workload]) -> list[str]:
    problems: list[str] = []
    callers = {*SERVICES, "provision"}
    namespace = kafka["metadata"].get("namespace", "")
    for listener in kafka["spec"]["kafka"]["listeners"]:
        where = f"Kafka/{kafka['metadata']['name']} listener {listener['name']}"
        if not listener.get("tls") or listener.get("authentication", {}).get("type") not in (
            "scram-sha-512",
            "tls",
        ):
            problems.append(f"{where}: must use TLS and authenticate clients (SCRAM or mTLS)")
        peers = _peers(listener.get("networkPolicyPeers"), namespace, pods)
        if not peers <= callers:
            extra = sorted(peers - callers)
            problems.append(f"{where}: reachable from {extra}; only the services and the Job may")
    return problems


def check(objects: list[dict[str, Any]]) -> list[str]:
    """Everything the network design promises, checked on one rendered overlay."""
    problems: list[str] = []
    pods = workloads(objects)
    by_name = {p.name: p for p in pods}
    namespaces = {p.namespace for p in pods}
    for namespace in sorted(namespaces):
        if not any(
            o["kind"] == "NetworkPolicy"
            and o["metadata"].get("namespace", "") == namespace
            and o["spec"].get("podSelector") == {}
            and "Ingress" in o["spec"].get("policyTypes", [])
            and not o["spec"].get("ingress")
            for o in objects
        ):
            problems.append(f"namespace {namespace or '(none)'}: no default-deny ingress policy")

    # Every service's staff or app routes come through the API gateway (incident's: the
    # response team's and the public notices); the sharing gateway's partner routes through
    # the partner entry too.
    gateways_of = {s: {"api-gateway"} for s in SERVICES}
    gateways_of["sharing-gateway"] = {"api-gateway", "partner-gateway"}
    for service in SERVICES:
        pod = by_name.get(service)
        if pod is None:
            problems.append(f"service {service}: no Deployment")
            continue
        for port, allowed in (
            ("internal", {*SERVICES, "prometheus", "provision"} - {service}),
            ("http", gateways_of[service]),
        ):
            if port not in pod.ports:
                problems.append(f"service {service}: no container port named {port}")
                continue
            callers = reachable_from(objects, pod, port, pods)
            if callers is None:
                problems.append(f"service {service}: no NetworkPolicy selects it")
            elif not callers <= allowed:
                problems.append(
                    f"service {service}: its {port} port is reachable from "
                    f"{sorted(callers - allowed)}; only {sorted(allowed)} may reach it"
                )

    for pod in pods:
        if pod.name.startswith("postgres:"):
            callers = reachable_from(objects, pod, "postgresql", pods)
            allowed = {*SERVICES, "provision", pod.name}
            if callers is None or not callers <= allowed:
                shown = "anyone" if callers is None else sorted(callers - allowed)
                problems.append(f"PostgreSQL {pod.name}: port 5432 reachable from {shown}")
    for obj in objects:
        if obj["kind"] == "Kafka":
            problems += _kafka_listener_peers(obj, pods)
    return problems
