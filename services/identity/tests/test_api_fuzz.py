"""schemathesis against identity's OpenAPI document: no input makes it fail with a 5xx."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from expensura_ops.testing.stack import LocalStack


@pytest.fixture(scope="session")
def identity_schema(stack: LocalStack) -> Any:
    return schemathesis.openapi.from_url(f"{stack.processes['identity'].url}/openapi.json")


@pytest.fixture(scope="session")
def user_headers(stack: LocalStack) -> dict[str, str]:
    """A real user's token, so the fuzzer reaches past authentication."""
    idp = stack.processes["identity"].url
    email, password = f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery staple"
    httpx.post(f"{idp}/v1/accounts", json={"email": email, "password": password})
    tokens = httpx.post(f"{idp}/v1/sessions", json={"email": email, "password": password}).json()
    return {"authorization": f"Bearer {tokens['access_token']}"}


def test_identity_api_never_answers_with_a_server_error(
    identity_schema: Any, user_headers: dict[str, str]
) -> None:
    operations = [result.ok() for result in identity_schema.get_all_operations()]
    assert len(operations) > 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def no_server_error(case: Any) -> None:
            case.call_and_validate(headers=user_headers, checks=[not_a_server_error], timeout=30)

        no_server_error()
