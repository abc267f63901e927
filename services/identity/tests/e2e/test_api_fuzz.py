"""schemathesis against identity's OpenAPI document: no input makes it fail with a 5xx."""

from __future__ import annotations

from expensura_events.vocabulary import StaffRole
from expensura_ops.testing import tokens
from expensura_ops.testing.fuzz import (
    ANONYMOUS,
    JUNK_TOKEN,
    as_service,
    assert_no_server_errors,
    static,
)
from expensura_ops.testing.stack import LocalStack


async def test_no_identity_operation_answers_with_a_server_error(stack: LocalStack) -> None:
    _, user = tokens.user(stack)  # a real user's token, so requests reach past authentication
    staff = await tokens.staff(stack, *StaffRole)  # every role, with MFA
    assert_no_server_errors(
        stack.processes["identity"],
        [
            ANONYMOUS,
            JUNK_TOKEN,
            static("user", user),
            static("staff", staff),
            as_service(stack, "sharing-gateway", "identity"),
        ],
    )
