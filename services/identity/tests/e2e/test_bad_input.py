"""Bad input at identity's edge: a clear 422 problem and nothing recorded."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from expensura_ops.testing import tokens
from expensura_ops.testing.stack import LocalStack

PASSWORD = "correct horse battery staple"


def _log_after(stack: LocalStack, head: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = httpx.get(
        f"{stack.processes['identity'].internal_url}/internal/log",
        params={"after": head, "limit": 5000},
        auth=stack.operator,
    ).json()["events"]
    return events


def _head(stack: LocalStack) -> int:
    url = f"{stack.processes['identity'].internal_url}/internal/log"
    return int(httpx.get(url, params={"limit": 1}, auth=stack.operator).json()["head"])


def _is_problem(resp: httpx.Response, status: int) -> bool:
    return (
        resp.status_code == status
        and resp.headers["content-type"] == "application/problem+json"
        and resp.json()["status"] == status
    )


@pytest.mark.parametrize(
    "details",
    [
        {"email": "nul\x00@example.com"},
        {"email": "tab\t@example.com"},
        {"phone": "+1415555\x000100"},
        {"password": "correct horse\x00battery"},
        {"email": "x@example.com\x85"},
    ],
    ids=["nul-email", "tab-email", "nul-phone", "nul-password", "c1-email"],
)
def test_sign_up_with_a_control_character_is_refused_and_records_nothing(
    stack: LocalStack, details: dict[str, str]
) -> None:
    idp = stack.processes["identity"].url
    head = _head(stack)
    body = {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD} | details
    resp = httpx.post(f"{idp}/v1/accounts", json=body)
    assert _is_problem(resp, 422), resp.text
    # Nothing was opened: no event (other tests' late effects may add other kinds).
    assert not [e for e in _log_after(stack, head) if e["event_type"] == "identity.AccountOpened"]


def test_a_correction_with_a_nul_is_refused_and_records_nothing(stack: LocalStack) -> None:
    idp = stack.processes["identity"].url
    _, auth = tokens.user(stack)
    head = _head(stack)
    for body in ({"email": "new\x00@example.com"}, {"phone": "+1415\x005550100"}):
        resp = httpx.patch(f"{idp}/v1/me/contact-details", json=body, headers=auth)
        assert _is_problem(resp, 422), resp.text
    corrected = [
        e for e in _log_after(stack, head) if e["event_type"] == "identity.ContactDetailsCorrected"
    ]
    assert not corrected


def test_times_without_an_offset_or_beyond_year_9999_are_refused(stack: LocalStack) -> None:
    idp = stack.processes["identity"].url
    for at in ("2026-11-26T10:00:00", "9999-12-31T23:30:00-05:00"):
        resp = httpx.post(
            f"{idp}/v1/interactions", json=[{"type": "click", "screen": "home", "occurred_at": at}]
        )
        assert _is_problem(resp, 422), resp.text
