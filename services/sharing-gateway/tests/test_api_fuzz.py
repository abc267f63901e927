"""schemathesis against the gateway's OpenAPI document: no input makes it fail with a 5xx."""

from __future__ import annotations

from expensura_ops.testing import tokens
from expensura_ops.testing.fuzz import assert_no_server_errors
from expensura_ops.testing.stack import LocalStack


async def test_gateway_api_never_answers_with_a_server_error(stack: LocalStack) -> None:
    officer = await tokens.staff(stack, "privacy-officer", "administrator")
    assert_no_server_errors(stack.processes["sharing-gateway"].url, officer, min_operations=10)
