"""schemathesis against the gateway's OpenAPI document: no input makes it fail with a 5xx."""

from __future__ import annotations

from expensura_events.vocabulary import Purpose, StaffRole
from expensura_ops.testing import tokens
from expensura_ops.testing.fuzz import (
    ANONYMOUS,
    JUNK_TOKEN,
    Principal,
    as_service,
    assert_no_server_errors,
    static,
)
from expensura_ops.testing.stack import LocalStack


async def test_no_gateway_operation_answers_with_a_server_error(stack: LocalStack) -> None:
    _, user = tokens.user(stack)
    staff = await tokens.staff(stack, *StaffRole)
    # A partner whose agreement and credential cover every purpose and inbound data, so that
    # partner requests get past authentication and scopes to the rules behind them.
    purposes = [p.value for p in Purpose]
    court = await tokens.partner(
        stack,
        "court-or-arbitration-body",
        purposes,
        ["email", "phone"],
        inbound=True,
        scopes=[*purposes, "inbound"],
    )
    assert_no_server_errors(
        stack.processes["sharing-gateway"],
        [
            ANONYMOUS,
            JUNK_TOKEN,
            static("user", user),
            static("staff", staff),
            Principal("partner", dict, court.requests_auth),
            as_service(stack, "consent", "sharing-gateway"),
        ],
    )
