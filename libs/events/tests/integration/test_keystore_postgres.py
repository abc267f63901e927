"""The PostgreSQL key store keeps the `KeyStore` contract (the same tests as in memory), on a
provisioned key-store database, through a service's own key-store role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from expensura_events.cipher import MasterKey
from expensura_events.db import engine_for
from expensura_events.keystore import KeyStore, PostgresKeyStore
from expensura_events.metrics import exposition
from expensura_events.testing.keystore_contract import KeyStoreContract
from expensura_ops.testing.stack import LocalStack


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    """One provisioned namespace for the module: every contract test uses fresh subjects."""
    stack = LocalStack(pg_admin_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("keys")))
    await stack.provision()
    try:
        yield stack
    finally:
        await stack.drop()


@pytest.mark.obligation("RGT-3")
class TestPostgresKeyStore(KeyStoreContract):
    @pytest.fixture
    async def store(self, provisioned: LocalStack) -> AsyncIterator[KeyStore]:
        settings = provisioned.settings("identity")
        engine = engine_for(settings.keystore_url, pool_size=2)
        try:
            yield PostgresKeyStore(engine, MasterKey.from_base64(settings.master_key))
        finally:
            await engine.dispose()


async def test_each_key_store_call_is_timed_under_its_operation(provisioned: LocalStack) -> None:
    """`expensura_keystore_duration_seconds{service, operation}`, for the store's service."""
    settings = provisioned.settings("identity")
    engine = engine_for(settings.keystore_url, pool_size=2)
    keys = PostgresKeyStore(engine, MasterKey.from_base64(settings.master_key), service="identity")

    def calls(operation: str) -> float:
        text = exposition("identity", []).decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "expensura_keystore_duration_seconds_count"
            and s.labels == {"service": "identity", "operation": operation}
        )

    before = {op: calls(op) for op in ("get_or_create_many", "get", "readable", "live")}
    subject = f"s-{uuid.uuid4().hex[:12]}"
    try:
        await keys.get_or_create(subject)
        await keys.get(subject)
        await keys.readable(subject)
        await keys.live(subject)
    finally:
        await engine.dispose()
    assert {op: calls(op) - n for op, n in before.items()} == {
        "get_or_create_many": 1,
        "get": 1,
        "readable": 1,
        "live": 1,
    }
    assert subject not in exposition("identity", []).decode()
