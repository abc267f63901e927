"""The foundation's promises, end to end: real service processes, PostgreSQL and broker."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from expensura_events.envelope import REDACTED
from expensura_events.runtime import ServiceRuntime
from expensura_events.topology import SERVICES, events_topic
from expensura_identity.app import service_definition as identity
from expensura_ops.devstack.broker import TansuBroker
from expensura_ops.testing import tokens
from expensura_ops.testing.dumps import pg_dump
from expensura_ops.testing.otlp import SandboxCollector
from expensura_ops.testing.stack import LocalStack, eventually, topic_messages

# Identity events one `new_account` leaves (sign-up, its first code, the sign-in).
PER_ACCOUNT = tokens.SIGN_UP_EVENTS


def new_account(url: str, *, email: str | None = None, phone: str | None = "+14155550100") -> str:
    return tokens.sign_up(url, email, phone=phone)


async def consent_sees(stack: LocalStack, subjects: list[str]) -> dict[str, int]:
    """How many identity events the consent service applied per subject (all must be known)."""
    consent = stack.processes["consent"].internal_url
    out = {}
    async with httpx.AsyncClient(auth=stack.operator) as client:
        for s in subjects:
            resp = await client.get(f"{consent}/internal/known-subjects/{s}")
            assert resp.status_code == 200, f"{s} not projected yet"
            out[s] = resp.json()["identity_events"]
    return out


async def published_event_ids(bootstrap: str, service: str, namespace: str) -> list[str]:
    return [
        headers["event_id"].decode()
        for _, _, headers in await topic_messages(bootstrap, events_topic(service, namespace))
    ]


async def test_relay_killed_between_commit_and_publish_loses_nothing_and_applies_once(
    fresh_stack: LocalStack,
) -> None:
    # identity without its in-process relay: commits happen, nothing is published
    fresh_stack.start("identity", EXPENSURA_WORKERS="false")
    fresh_stack.start("consent")
    idp = fresh_stack.processes["identity"].url
    subjects = [new_account(idp) for _ in range(25)]
    assert (
        await published_event_ids(fresh_stack.bootstrap_servers, "identity", fresh_stack.namespace)
        == []
    )

    # a relay that dies after the broker acknowledged its batch, before it saved its position
    crashed = fresh_stack.cli(
        "relay", "run", "--service", "identity", "--crash-after-publish", check=False
    )
    assert crashed.returncode == 70, crashed.stdout + crashed.stderr
    first = await published_event_ids(
        fresh_stack.bootstrap_servers, "identity", fresh_stack.namespace
    )
    assert len(first) == 25 * PER_ACCOUNT

    relay = subprocess.Popen(
        [str(Path(sys.executable).with_name("expensura")), "relay", "run", "-s", "identity"],
        env=fresh_stack.service_env("identity"),
    )
    try:
        # every event is published twice (the crash came before the position was saved) …
        async def republished() -> list[str] | None:
            ids = await published_event_ids(
                fresh_stack.bootstrap_servers, "identity", fresh_stack.namespace
            )
            return ids if len(ids) == 50 * PER_ACCOUNT else None

        ids = await eventually(republished, what="the restarted relay to republish")
        assert len(set(ids)) == 25 * PER_ACCOUNT
    finally:
        relay.terminate()
        relay.wait(10)

    # … consent received all 50 and applied each event exactly once
    async def consumed_all() -> dict[str, int] | None:
        stats = httpx.get(
            f"{fresh_stack.processes['consent'].internal_url}/internal/workers",
            auth=fresh_stack.operator,
        ).json()
        counts = stats["projections"]["known-subjects"]
        return counts if counts["applied"] + counts["duplicates"] == 50 * PER_ACCOUNT else None

    counts = await eventually(consumed_all, what="consent to consume both copies")
    assert (counts["applied"], counts["duplicates"]) == (25 * PER_ACCOUNT, 25 * PER_ACCOUNT)
    assert await consent_sees(fresh_stack, subjects) == dict.fromkeys(subjects, PER_ACCOUNT)


async def _all_projected(stack: LocalStack, subjects: list[str]) -> dict[str, int] | None:
    try:
        return await consent_sees(stack, subjects)
    except AssertionError:
        return None


async def test_one_trace_spans_http_request_kafka_and_the_other_services_projection(
    fresh_stack: LocalStack,
) -> None:
    collector = SandboxCollector().start()
    try:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        fresh_stack.start("identity", **otel)
        fresh_stack.start("consent", **otel)
        traceparent_trace = uuid.uuid4().hex
        resp = httpx.post(
            f"{fresh_stack.processes['identity'].url}/v1/accounts",
            headers={"traceparent": f"00-{traceparent_trace}-{uuid.uuid4().hex[:16]}-01"},
            json={"email": "traced@example.com", "password": "correct horse battery staple"},
        )
        assert resp.status_code == 202
        subject = tokens.signed_in_subject(
            fresh_stack.processes["identity"].url, "traced@example.com"
        )
        await eventually(lambda: _all_projected(fresh_stack, [subject]), what="projection")

        def services_in_trace() -> set[tuple[str, int]]:
            return {(s.service, s.kind) for s in collector.trace(traceparent_trace)}

        async def complete() -> bool:
            got = services_in_trace()
            projected = any(
                s.attributes.get("expensura.projection") == "known-subjects"
                for s in collector.trace(traceparent_trace)
            )
            return (
                projected
                and {
                    ("expensura-identity", 2),
                    ("expensura-identity", 4),
                    ("expensura-consent", 5),
                }
                <= got
            )

        await eventually(complete, what="spans from both services in one trace")
        spans = collector.trace(traceparent_trace)
        # A sign-up appends several events: each projected one's consumer span is a child
        # of the producer span that published it.
        producers = {s.span_id for s in spans if s.kind == 4}
        consumed = [s for s in spans if s.kind == 5]
        assert any(s.attributes["expensura.projection"] == "known-subjects" for s in consumed)
        assert all(s.parent_span_id in producers for s in consumed)
    finally:
        collector.stop()


async def test_broker_restarted_with_all_data_lost_relay_republishes_consumers_converge(
    isolated_stack: LocalStack, own_broker: TansuBroker
) -> None:
    isolated_stack.start("identity")
    isolated_stack.start("consent")
    idp = isolated_stack.processes["identity"].url
    inside = isolated_stack.processes["identity"].internal_url
    before = [new_account(idp) for _ in range(10)]
    await eventually(lambda: _all_projected(isolated_stack, before), what="first projection")

    own_broker.restart()  # memory-only: topics, messages and group offsets are gone

    async def loss_noticed() -> bool:
        # The relay checks the broker every few seconds, so by the time a test could read the
        # empty topic it may already be republishing: what it must show is that it noticed.
        async with httpx.AsyncClient(timeout=5, auth=isolated_stack.operator) as client:
            workers = (await client.get(f"{inside}/internal/workers")).json()
        return bool(workers["relay"]["republished_from_start"] >= 1)

    await eventually(loss_noticed, what="the relay to notice the broker lost its data")

    after = [new_account(idp) for _ in range(5)]
    seen = await eventually(
        lambda: _all_projected(isolated_stack, before + after),
        timeout=60,
        what="convergence after the broker lost its data",
    )
    assert seen == dict.fromkeys(before + after, PER_ACCOUNT)

    async def republished() -> bool:
        ids = await published_event_ids(
            own_broker.bootstrap_servers, "identity", isolated_stack.namespace
        )
        return len(set(ids)) == 15 * PER_ACCOUNT

    await eventually(republished, what="the whole log republished to the new broker")


@pytest.mark.obligation("SEC-1")
async def test_after_shredding_a_subject_its_plaintext_is_in_no_dump_and_no_message(
    fresh_stack: LocalStack,
) -> None:
    fresh_stack.start("identity")
    fresh_stack.start("consent")
    idp = fresh_stack.processes["identity"].url
    email, phone = f"shred-{uuid.uuid4().hex[:8]}@example.com", "+14155559876"
    other_email = f"keep-{uuid.uuid4().hex[:8]}@example.com"
    subject = new_account(idp, email=email, phone=phone)
    new_account(idp, email=other_email)
    await eventually(lambda: _all_projected(fresh_stack, [subject]), what="projection")

    fresh_stack.cli("subject", "shred", subject, "--reason", "test erasure")

    databases = [
        fresh_stack.namespace + d
        for d in (
            "expensura_identity",
            "expensura_consent",
            "expensura_loans",
            "expensura_sharing_gateway",
            "expensura_incident",
            "expensura_keystore",
        )
    ]
    messages = [
        value
        for service in ("identity", "consent")
        for _, value, _ in await topic_messages(
            fresh_stack.bootstrap_servers, events_topic(service, fresh_stack.namespace)
        )
    ]
    assert messages, "the events did reach Kafka"
    for secret in (email.encode(), phone.encode()):
        for db in databases:
            assert secret not in pg_dump(fresh_stack.admin_url, db), db
        assert not [m for m in messages if secret in m], secret

    verify = fresh_stack.cli("log", "verify")
    assert verify.returncode == 0 and "BROKEN" not in verify.stdout

    rt = ServiceRuntime(identity, fresh_stack.settings("identity"))
    try:
        async with rt.engine.connect() as conn:
            events = await rt.store.read_subject(conn, subject)
    finally:
        await rt.close()
    opened = next(e for e in events if e.event_type == "identity.AccountOpened")
    assert opened.payload.email == REDACTED and opened.payload.phone == REDACTED
    assert any(e.event_type == "platform.SubjectKeyDestroyed" for e in events)
    # the other subject is untouched: the key was theirs alone
    assert other_email.encode() not in b"".join(messages)


async def test_readyz_reports_503_when_the_database_is_unreachable(fresh_stack: LocalStack) -> None:
    env = fresh_stack.env["loans"]
    bad = env["EXPENSURA_DATABASE_URL"].replace(
        f":{make_url(env['EXPENSURA_DATABASE_URL']).port}/", ":1/"
    )
    sp = fresh_stack.start("loans", wait=False, EXPENSURA_DATABASE_URL=bad)
    await eventually(lambda: _status(f"{sp.url}/healthz", 200), what="process alive")
    resp = httpx.get(f"{sp.url}/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"] == {"database": False, "keystore": True, "broker": True}


async def _status(url: str, code: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).status_code == code
    except httpx.HTTPError:
        return False


async def test_every_service_serves_health_readiness_and_openapi(stack: LocalStack) -> None:
    """Probes on both listeners; the API document on the internal one only (the gateways
    never route it, and the public listener does not serve it either)."""
    async with httpx.AsyncClient() as client:
        for name in (s.name.value for s in SERVICES):
            sp = stack.processes[name]
            for url in (sp.url, sp.internal_url):
                assert (await client.get(f"{url}/healthz")).json()["status"] == "ok"
                ready = await client.get(f"{url}/readyz")
                assert ready.status_code == 200 and ready.json()["service"] == name
            doc = (await client.get(f"{sp.internal_url}/openapi.json")).json()
            assert doc["openapi"].startswith("3.") and "/healthz" in doc["paths"]
            for path in ("/openapi.json", "/docs"):
                hidden = await client.get(f"{sp.url}{path}")
                assert hidden.status_code == 404, (name, path)
                assert hidden.headers["content-type"] == "application/problem+json"


async def test_bad_input_is_a_problem_json_and_changes_nothing(stack: LocalStack) -> None:
    idp, inside = stack.processes["identity"].url, stack.processes["identity"].internal_url
    async with httpx.AsyncClient(auth=stack.operator) as client:
        head_before = (await client.get(f"{inside}/internal/log?limit=1")).json()["head"]
        for body in (
            {"email": "not-an-address", "password": "long enough pw"},
            {"email": "a@example.com", "phone": "0800", "password": "long enough pw"},
            {"email": "a@example.com"},
            {"email": "x" * 5000, "password": "x"},
        ):
            resp = await client.post(f"{idp}/v1/accounts", json=body)
            assert resp.status_code == 422, resp.text
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["status"] == 422
        huge = await client.post(
            f"{idp}/v1/accounts",
            content=b"{" + b" " * 2_000_000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413
        assert (await client.get(f"{inside}/internal/log?limit=1")).json()["head"] == head_before
        email = f"dup-{uuid.uuid4().hex[:6]}@example.com"
        new_account(idp, email=email)
        dup = await client.post(
            f"{idp}/v1/accounts",
            json={"email": email.upper(), "password": "correct horse battery staple"},
        )
        free = await client.post(
            f"{idp}/v1/accounts",
            json={"email": f"free-{email}", "password": "correct horse battery staple"},
        )
        # a taken e-mail is answered as a free one: no enumeration of customers
        assert dup.status_code == free.status_code == 202
        assert json.loads(dup.text) == json.loads(free.text)
