"""The gateway's use cases against a real PostgreSQL, in-process: one stack provisioned per
module (databases, roles, migrations), no service process started, no HTTP (the calls to
consent and identity are replaced where a test needs an answer from them)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from expensura_events.keystore import InMemoryKeyStore
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import EventStore
from expensura_ops.testing.stack import LocalStack
from expensura_sharing_gateway.app import service_definition


@pytest.fixture(scope="module")
async def rt(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceRuntime]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("gateway"))
    await stack.provision()
    runtime = ServiceRuntime(
        service_definition, stack.settings("sharing-gateway"), keys=InMemoryKeyStore()
    )
    try:
        yield runtime
    finally:
        await runtime.close()
        await stack.drop()


async def log_of(rt: ServiceRuntime, stream_prefix: str = "") -> list[dict[str, Any]]:
    """The gateway's log as stored, parsed, optionally only streams with this prefix."""
    async with rt.engine.connect() as conn:
        records = await EventStore.read_records(conn, 0, 100_000)
    return [json.loads(r.record) for r in records if r.stream_id.startswith(stream_prefix)]
