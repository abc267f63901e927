"""schemathesis against consent's OpenAPI document: no input makes it fail with a 5xx."""

from __future__ import annotations

from expensura_ops.testing import tokens
from expensura_ops.testing.fuzz import assert_no_server_errors
from expensura_ops.testing.stack import LocalStack


def test_consent_api_never_answers_with_a_server_error_for_a_user(stack: LocalStack) -> None:
    _, auth = tokens.user(stack)
    assert_no_server_errors(stack.processes["consent"].url, auth, min_operations=15)


async def test_consent_api_never_answers_with_a_server_error_for_a_privacy_officer(
    stack: LocalStack,
) -> None:
    officer = await tokens.staff(stack, "privacy-officer")
    assert_no_server_errors(stack.processes["consent"].url, officer, max_examples=15)
