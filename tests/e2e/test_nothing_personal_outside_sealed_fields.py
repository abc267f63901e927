"""Nothing personal outside the sealed fields (SEC-1): after every other test of the session,
no plaintext of any personal value the tests used is left in a database, a topic, a log
line or a span. Personal values exist only as ciphertext under the subject's key, so that
destroying the key erases them everywhere.

Runs last (`runs_last`) on the session's shared stack — under xdist, once on each worker,
after all that worker ran, on that worker's session — and searches:
- a pg_dump of every database of the shared stack (each service's and the key store);
- every message of every topic of the stacks this session ran on the session's broker;
- every service process's log file of every stack this session started;
- every span (attributes, events, status) the shared stack exported.
The values are those recorded with `expensura_ops.testing.personal.record` (the token
helpers record each user's e-mail and phone); the test adds a scenario of its own so that it
searches for something even when run alone. Databases of the tests' private stacks are
dropped when those tests end, so only their logs and topics are left to search.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from expensura_events.topology import KEYSTORE_DATABASE, SERVICES
from expensura_ops.testing import personal, tokens
from expensura_ops.testing.dumps import pg_dump
from expensura_ops.testing.fixtures import SESSION_STACKS, current_session_worker
from expensura_ops.testing.otlp import SandboxCollector
from expensura_ops.testing.stack import LocalStack, eventually, topics_messages

pytestmark = [pytest.mark.runs_last, pytest.mark.obligation("SEC-1")]


async def scenario(stack: LocalStack) -> None:
    """A customer signs up, corrects their phone, and incident learns the new contact."""
    subject, auth = tokens.user(stack, phone="+14155550961")
    new_phone = "+14155550962"
    personal.record("a corrected phone", new_phone)
    identity = stack.processes["identity"].url
    async with httpx.AsyncClient(timeout=15) as client:
        resp = await client.patch(
            f"{identity}/v1/me/contact-details", headers=auth, json={"phone": new_phone}
        )
        assert resp.status_code == 200, resp.text

    async def incident_knows() -> bool:
        async with httpx.AsyncClient(auth=stack.operator, timeout=10) as client:
            url = stack.processes["incident"].internal_url
            resp = await client.get(f"{url}/internal/notification-contacts/{subject}")
        return resp.status_code == 200 and resp.json()["phone_present"]

    await eventually(incident_knows, what="incident to follow the corrected contact")


async def topics_of(bootstrap: str, namespaces: set[str]) -> list[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return sorted(t for t in await consumer.topics() if any(map(t.startswith, namespaces)))
    finally:
        await consumer.stop()


async def test_no_plaintext_personal_value_in_any_dump_topic_log_or_span(
    session_worker: str,
    stack: LocalStack,
    kafka_bootstrap: str,
    span_collector: SandboxCollector,
) -> None:
    # One copy per xdist worker, each searching its own session's stacks.
    assert session_worker == current_session_worker(), "run on another worker's session"
    await scenario(stack)
    values = personal.recorded()
    assert values, "no personal value recorded: the search would prove nothing"

    sources: list[tuple[str, bytes]] = []
    for database in [*(s.database for s in SERVICES), KEYSTORE_DATABASE]:
        name = stack.namespace + database
        dump = await asyncio.to_thread(pg_dump, stack.admin_url, name)
        assert b"COPY " in dump, f"the dump of {name} holds no table"
        sources.append((f"database {name}", dump))

    namespaces = {s.namespace for s in SESSION_STACKS if s.bootstrap_servers == kafka_bootstrap}
    topics = await topics_of(kafka_bootstrap, namespaces)
    assert any(t.startswith(stack.namespace) for t in topics)
    # Every topic at once: one consumer, one settling second (not one per topic).
    messages = await topics_messages(kafka_bootstrap, topics, timeout=120, strict=True)
    assert any(messages[t] for t in topics if t.startswith(stack.namespace)), "nothing read"
    for topic in topics:
        for n, (key, value, headers) in enumerate(messages[topic]):
            sources.append(
                (f"topic {topic} message {n}", b"\n".join([key or b"", value, *headers.values()]))
            )

    logs = sorted({p for s in SESSION_STACKS for p in s.workdir.glob("*.log")})
    assert logs
    sources += [(f"log {path.name} ({path.parent})", path.read_bytes()) for path in logs]

    await asyncio.sleep(1)  # the services export spans in batches every 200 ms
    spans = list(span_collector.spans)
    assert spans, "the shared stack exported no span"
    sources += [
        (f"span {s.service}:{s.name} {s.trace_id}/{s.span_id}", s.text().encode()) for s in spans
    ]

    found = personal.find_plaintext(values, sources)
    assert not found, f"{len(found)} plaintext personal values:\n" + "\n".join(
        map(str, found[:100])
    )


def test_the_search_finds_every_stored_form_of_a_value() -> None:
    """The search is not blind: a value as text, JSON-escaped, or in a dumped bytea."""
    value = f'case-{uuid.uuid4().hex[:8]} "quoted"'
    values = {value: "a case reference"}
    for form in personal.encodings(value):
        assert personal.find_plaintext(values, [("x", b"..." + form + b"...")])
    bytea = "\\x" + ('{"case_reference":' + repr(value) + "}").encode().hex()
    assert personal.find_plaintext(values, [("dump", bytea.encode())])
    assert not personal.find_plaintext(values, [("x", b"sealed")])
