"""The PostgreSQL key store keeps the `KeyStore` contract (the same tests as in memory), on a
provisioned key-store database, through a service's own key-store role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from expensura_events.cipher import MasterKey
from expensura_events.db import engine_for
from expensura_events.keystore import KeyStore, PostgresKeyStore
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
