"""The metrics contract and the request series, in process: what a service can export is
exactly `CONTRACT` (the dashboards' and alert rules' names and labels), and a request's
path never reaches a label. No server; the database is unreachable (its readings are
left out, the scrape still answers)."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from expensura_events.metrics import (
    CONTRACT,
    COUNTED,
    REGISTRY,
    RELAY_PUBLISHED,
    SCRAPED,
    Reading,
    exposition,
    series_names,
)
from expensura_events.runtime import ServiceDefinition
from expensura_events.settings import ServiceSettings
from expensura_events.topology import service
from expensura_events.web import app as web_app
from expensura_events.web.listeners import Listener, only_on

router = APIRouter()


@router.get("/v1/things/{thing_id}")
async def thing(thing_id: uuid.UUID) -> dict[str, str]:
    return {"thing": "found"}


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _name_of(metric: object) -> str:
    (family,) = metric.describe()  # type: ignore[attr-defined]
    suffix = {"counter": "_total", "histogram": "_bucket"}[family.type]
    return str(family.name) + suffix


def test_a_service_exports_exactly_the_contracts_names_and_labels() -> None:
    """Fails if a service can export a name (or label) the dashboards do not know, or the
    contract names something no service exports."""
    me = "contract-test"
    made: list[tuple[object, dict[str, str]]] = []
    for metric in COUNTED:  # labels() refuses label names the metric was not declared with
        labels = {k: me if k == "service" else "x" for k in CONTRACT[_name_of(metric)]}
        child = metric.labels(**labels)
        (child.observe if hasattr(child, "observe") else child.inc)(1)
        made.append((metric, labels))
    readings = [
        Reading(name, 1, {k: me if k == "service" else "x" for k in CONTRACT[name]})
        for name in SCRAPED
    ]
    try:
        exported = samples(exposition(me, readings).decode())
    finally:
        for metric, labels in made:
            metric.remove_by_labels(labels)  # type: ignore[attr-defined]
    allowed = series_names()
    assert {name for name, _, _ in exported} == set(allowed)
    for name, labels, _ in exported:
        assert set(labels) == allowed[name], name
    # and the registry holds nothing COUNTED does not name
    assert {f.name for f in REGISTRY.collect()} == {
        f.name
        for m in COUNTED
        for f in m.describe()  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("expensura_subjects_total", {}),  # not in the contract
        ("expensura_dead_letters", {"service": "consent"}),  # a label missing
        ("expensura_erasures_pending", {"subject": "s-1"}),  # a label it does not have
    ],
)
def test_a_reading_outside_the_contract_is_refused(name: str, labels: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Reading(name, 1, labels)


def test_a_scrape_shows_only_its_own_services_series() -> None:
    """Several services in one process (the tests): each scrape is its own service's."""
    RELAY_PUBLISHED.labels(service="another-service").inc()
    try:
        assert 'service="another-service"' not in exposition("loans", []).decode()
        theirs = exposition("another-service", []).decode()
        assert 'expensura_relay_published_total{service="another-service"} 1.0' in theirs
    finally:
        RELAY_PUBLISHED.remove("another-service")


def settings() -> ServiceSettings:
    # Engines connect lazily; the scrape's database readings fail fast and are left out.
    return ServiceSettings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        keystore_url="postgresql://nobody@127.0.0.1:1/none",
        master_key=base64.b64encode(os.urandom(32)).decode(),
        kafka_bootstrap_servers="127.0.0.1:1",
        workers=False,
    )


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(web_app, "configure_tracing", lambda name: None)  # no global provider
    definition = ServiceDefinition(
        spec=service("loans"), description="metrics test", routers=[router]
    )
    app = web_app.create_app(definition, settings_factory=settings)
    with TestClient(app) as c:
        yield c


def count(text: str, route: str, method: str, status: str) -> float:
    return sum(
        value
        for name, labels, value in samples(text)
        if name == "http_server_requests_total"
        and labels == {"service": "loans", "route": route, "method": method, "status": status}
    )


def test_a_request_is_counted_under_its_route_template_and_its_path_never_appears(
    client: TestClient,
) -> None:
    before = client.get("/metrics").text
    subject = str(uuid.uuid4())
    assert client.get(f"/v1/things/{subject}").status_code == 200
    assert client.get(f"/v1/nowhere/{subject}").status_code == 404
    assert client.request(f"X{subject[:8]}", f"/v1/things/{subject}").status_code == 405
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    after = scrape.text
    assert subject not in after and subject[:8] not in after
    template = "/v1/things/{thing_id}"
    assert count(after, template, "GET", "200") == count(before, template, "GET", "200") + 1
    assert count(after, "unmatched", "GET", "404") == count(before, "unmatched", "GET", "404") + 1
    assert count(after, template, "other", "405") == count(before, template, "other", "405") + 1
    assert count(after, "/metrics", "GET", "200") == 0  # scrapes are not counted
    # the duration histogram has the same series
    assert f'http_server_request_duration_seconds_count{{method="GET",route="{template}"' in after


def test_metrics_is_not_served_on_the_public_listener(client: TestClient) -> None:
    public = TestClient(only_on(Listener.PUBLIC, client.app))
    answer = public.get("/metrics")
    assert answer.status_code == 404
    assert "http_server_requests_total" not in answer.text
    internal = TestClient(only_on(Listener.INTERNAL, client.app))
    assert internal.get("/metrics").status_code == 200
