"""schemathesis against loans' OpenAPI document: no input makes it fail with a 5xx."""

from __future__ import annotations

from expensura_ops.testing import tokens
from expensura_ops.testing.fuzz import (
    ANONYMOUS,
    JUNK_TOKEN,
    as_service,
    assert_no_server_errors,
    static,
)
from expensura_ops.testing.stack import LocalStack


def test_no_loans_operation_answers_with_a_server_error(stack: LocalStack) -> None:
    _, user = tokens.user(stack)
    assert_no_server_errors(
        stack.processes["loans"],
        [ANONYMOUS, JUNK_TOKEN, static("user", user), as_service(stack, "identity", "loans")],
    )
