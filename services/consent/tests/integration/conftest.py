"""Consent's use cases against a real PostgreSQL, in-process: a stack provisioned once per
module (databases, roles, migrations) with no service process started, the first policy
version published."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from expensura_consent.app import service_definition
from expensura_consent.policy.service import INITIAL_VERSION, publish_initial_version
from expensura_consent.records import service as records
from expensura_consent.records.domain import ConsentChoice, ConsentRecord
from expensura_events.keystore import InMemoryKeyStore
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import event_log
from expensura_events.vocabulary import Purpose
from expensura_ops.testing.stack import LocalStack

MARKETING = ConsentChoice(
    purpose=Purpose.MARKETING,
    categories=frozenset({"pd:Contact"}),
    recipients=frozenset(),
    policy_version=INITIAL_VERSION,
)


@pytest.fixture(scope="module")
async def rt(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceRuntime]:
    """One provisioned namespace for the module (each test uses subjects of its own)."""
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("consent"))
    await stack.provision()
    runtime = ServiceRuntime(service_definition, stack.settings("consent"), keys=InMemoryKeyStore())
    try:
        await publish_initial_version(runtime)
        yield runtime
    finally:
        await runtime.close()
        await stack.drop()


def new_subject() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


async def given(
    rt: ServiceRuntime, subject: str, choice: ConsentChoice = MARKETING
) -> ConsentRecord:
    return await records.give(rt, subject, choice)


async def logged(rt: ServiceRuntime, subject: str) -> list[tuple[str, str]]:
    """(event type, stream) of the subject's events, in log order."""
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(event_log.c.event_type, event_log.c.stream_id)
            .where(event_log.c.subject_id == subject)
            .order_by(event_log.c.seq)
        )
        return [(r.event_type, r.stream_id) for r in rows]
