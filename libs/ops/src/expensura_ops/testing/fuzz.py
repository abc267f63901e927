"""schemathesis over a running service's OpenAPI document: no input may cause a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


def assert_no_server_errors(
    base_url: str, headers: dict[str, str], *, max_examples: int = 25, min_operations: int = 1
) -> int:
    """Exercise every operation with generated requests; returns how many were covered."""
    schema: Any = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= min_operations, "the document lists fewer operations than expected"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=max_examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def no_server_error(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=30)

        no_server_error()
    return len(operations)
