"""schemathesis against identity's OpenAPI document: no input makes it fail with a 5xx."""

from __future__ import annotations

from expensura_ops.testing import tokens
from expensura_ops.testing.fuzz import assert_no_server_errors
from expensura_ops.testing.stack import LocalStack


def test_identity_api_never_answers_with_a_server_error(stack: LocalStack) -> None:
    _, auth = tokens.user(stack)  # a real user's token, so requests reach past authentication
    assert_no_server_errors(stack.processes["identity"].url, auth, min_operations=10)
