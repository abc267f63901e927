"""Loans' service layer against a real database: one provisioned namespace per module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from expensura_events.keystore import InMemoryKeyStore
from expensura_events.runtime import ServiceRuntime
from expensura_loans.app import service_definition as loans
from expensura_ops.testing.stack import LocalStack


@pytest.fixture(scope="module")
async def rt(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceRuntime]:
    """Loans' runtime over a namespace of the module's own (each test uses subjects of its
    own; the servicing cycle visits every loan, so its tests check their loans' events)."""
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("loans"))
    await stack.provision()
    runtime = ServiceRuntime(loans, stack.settings("loans"), keys=InMemoryKeyStore())
    try:
        yield runtime
    finally:
        await runtime.close()
        await stack.drop()
