"""Consent's `/metrics` against its real database, in process: consents given and
withdrawn and decisions show in their series, the relay's lag and the open dead letters are
read from the database at the scrape, every series is in the contract, and a subject's or a
consent's id never reaches a label."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from expensura_consent.app import service_definition
from expensura_consent.decisions import service as decisions
from expensura_consent.records import service as records
from expensura_events.metrics import series_names
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_events.web.app import create_app
from expensura_events.web.listeners import Listener, only_on

from .conftest import given, new_subject

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def application(rt: ServiceRuntime) -> FastAPI:
    app = create_app(service_definition)
    app.state.runtime = rt  # what the lifespan would set (not run here)
    return app


def listening(app: FastAPI, listener: Listener) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=only_on(listener, app))
    return httpx.AsyncClient(transport=transport, base_url="http://consent")


@pytest.fixture
async def app(application: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Consent's app on the test's runtime, as its internal listener serves it."""
    async with listening(application, Listener.INTERNAL) as client:
        yield client


@pytest.fixture
async def public(application: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The same app as its public listener serves it."""
    async with listening(application, Listener.PUBLIC) as client:
        yield client


async def scrape(client: httpx.AsyncClient) -> tuple[str, Samples]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    text = answer.text
    found = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_consent_given_and_withdrawn_shows_in_the_counters_and_the_log_series(
    rt: ServiceRuntime, app: httpx.AsyncClient
) -> None:
    _, before = await scrape(app)
    subject = new_subject()
    record = await given(rt, subject)  # marketing
    await records.withdraw_consent(rt, subject, record.consent_id)
    text, after = await scrape(app)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("expensura_consents_given_total", purpose=Purpose.MARKETING.value) == 1
    assert grew("expensura_consents_withdrawn_total", purpose=Purpose.MARKETING.value) == 1
    # two appends, each timed in the serialising call
    assert grew("expensura_append_lock_wait_seconds_count", service="consent") == 2
    # no relay runs here: both events wait to be published, read from the database
    assert grew("expensura_relay_lag_events", service="consent") >= 2
    assert value(after, "expensura_relay_lag_events", service="consent") >= 2
    for runner in rt.runners:  # every projection's open dead letters, read at the scrape
        labels = {"service": "consent", "projection": runner.projection.name}
        assert ("expensura_dead_letters", frozenset(labels.items())) in after
    assert subject not in text and str(record.consent_id) not in text


async def test_a_decision_observes_the_decision_histogram(
    rt: ServiceRuntime, app: httpx.AsyncClient
) -> None:
    _, before = await scrape(app)
    subject = new_subject()
    await given(rt, subject)
    decided = await decisions.make_decision(
        rt,
        decisions.Question(
            subject_id=subject,
            purpose=Purpose.MARKETING,
            categories=frozenset({"pd:Contact"}),
            recipient=None,
            requester="tests",
        ),
    )
    assert decided.decision.allowed
    text, after = await scrape(app)
    name = "expensura_consent_decision_duration_seconds_count"
    assert value(after, name, service="consent") == value(before, name, service="consent") + 1
    assert subject not in text and str(decided.decision_id) not in text


async def test_every_series_of_a_scrape_is_in_the_contract_and_no_id_reaches_a_label(
    app: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    consent_id, subject = uuid.uuid4(), new_subject()
    # the attack: ids in paths, matched by a route or not, then read every label value
    assert (await public.get(f"/v1/me/consents/{consent_id}/receipt")).status_code == 401
    assert (await public.get(f"/v1/subjects/{subject}/basis")).status_code == 401
    assert (await app.get(f"/internal/known-subjects/{subject}")).status_code == 401
    assert (await public.get(f"/v1/{subject}/{consent_id}")).status_code == 404
    text, samples = await scrape(app)
    assert str(consent_id) not in text and subject not in text
    allowed = series_names()
    for name, labels in samples:
        assert name in allowed, name
        assert {k for k, _ in labels} == allowed[name], name
    routes = {dict(labels).get("route") for name, labels in samples if "route" in dict(labels)}
    assert {
        "/v1/me/consents/{consent_id}/receipt",
        "/v1/subjects/{subject_id}/basis",
        "/internal/known-subjects/{subject_id}",
        "unmatched",
    } <= routes


async def test_metrics_answers_404_on_the_public_listener(public: httpx.AsyncClient) -> None:
    answer = await public.get("/metrics")
    assert answer.status_code == 404
    assert "expensura_" not in answer.text
