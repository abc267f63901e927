"""The in-memory key store keeps the `KeyStore` contract (the same tests PostgreSQL passes)."""

from __future__ import annotations

import pytest

from expensura_events.keystore import InMemoryKeyStore, KeyStore
from expensura_events.testing.keystore_contract import KeyStoreContract


@pytest.mark.obligation("RGT-3")
class TestInMemoryKeyStore(KeyStoreContract):
    @pytest.fixture
    def store(self) -> KeyStore:
        return InMemoryKeyStore()
