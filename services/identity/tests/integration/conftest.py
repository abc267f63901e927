"""Identity's use cases against a real PostgreSQL, in-process: a stack provisioned once per
module (databases, roles, migrations) with no service process started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from expensura_events.runtime import ServiceRuntime
from expensura_identity.app import service_definition
from expensura_identity.settings import IdentitySettings
from expensura_ops.testing.stack import LocalStack

# argon2 at a test cost (the tests exercise what is hashed and when, not the cost).
CHEAP_HASHING = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 1024,
    "password_hash_parallelism": 1,
}


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("identity"))
    await stack.provision()
    try:
        yield stack
    finally:
        await stack.drop()


def runtime(stack: LocalStack, **settings: Any) -> ServiceRuntime:
    base = stack.settings("identity")
    assert isinstance(base, IdentitySettings)
    return ServiceRuntime(service_definition, base.model_copy(update=CHEAP_HASHING | settings))


@pytest.fixture
async def rt(provisioned: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime_ = runtime(provisioned)
    try:
        yield runtime_
    finally:
        await runtime_.close()
