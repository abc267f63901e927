"""Real-name verification against the sandbox agency, and the loans gate that needs it."""

from __future__ import annotations

import random
import uuid

import httpx
import pytest

from expensura_events.topology import events_topic
from expensura_identity.verification.domain import valid_bank_card, valid_id_number
from expensura_ops.testing import personal, tokens
from expensura_ops.testing.dumps import pg_dump
from expensura_ops.testing.stack import AGENCY, LocalStack, eventually, topic_messages

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number() -> str:
    body = "110101" + f"{random.randint(1950, 2005)}0101" + f"{random.randint(100, 999)}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]
    assert valid_id_number(body + check)
    return body + check


def bank_card() -> str:
    base = "622848" + "".join(random.choice("0123456789") for _ in range(12))
    for digit in "0123456789":
        if valid_bank_card(base + digit):
            return base + digit
    raise AssertionError


def _submit(stack: LocalStack, auth: dict[str, str], mobile: str, **extra: str) -> httpx.Response:
    return httpx.post(
        f"{stack.processes['identity'].url}/v1/me/verification",
        headers=auth,
        json={
            "id_number": extra.get("id_number", id_number()),
            "bank_card": extra.get("bank_card", bank_card()),
            "mobile": mobile,
            "face_ref": "face-upload-2026-11-25-0001",
        },
        timeout=30,
    )


LOAN_AMOUNT_CENTS = 4_736_291  # distinctive: the last test searches every store for it
personal.record("a loan amount", LOAN_AMOUNT_CENTS)


def _app_evidence() -> dict[str, str]:
    """What the app sends loans for its risk signals (USE-6): its device id and the card
    tokeniser's fingerprint, both of their own here so that no signal fires."""
    return {
        "expensura-device-id": str(uuid.uuid4()),
        "expensura-card-fingerprint": f"fp_{uuid.uuid4().hex}",
    }


def _apply(stack: LocalStack, auth: dict[str, str]) -> int:
    return httpx.post(
        f"{stack.processes['loans'].url}/v1/loan-applications",
        headers=auth | _app_evidence(),
        json={
            "amount_cents": LOAN_AMOUNT_CENTS,
            "term_months": 12,
            "purpose": "vehicle",
            "stated_monthly_income_cents": 520_000,
        },
    ).status_code


@pytest.mark.obligation("USE-1", "COL-2")
async def test_verified_through_the_agency_then_loans_accepts(stack: LocalStack) -> None:
    _, auth = tokens.user(stack)
    assert _apply(stack, auth) == 403  # not verified: loan services refused
    ident, card = id_number(), bank_card()
    resp = _submit(stack, auth, "+8613800138000", id_number=ident, bank_card=card)
    assert resp.status_code == 202 and resp.json()["state"] == "verified"
    status = httpx.get(f"{stack.processes['identity'].url}/v1/me/verification", headers=auth).json()
    claims = status["verified_claims"]["verification"]
    assert claims["trust_framework"] == "cn_rnv" and claims["txn"] == status["request_id"]
    assert {e["type"] for e in claims["evidence"]} == {"document", "electronic_record"}

    async def loans_knows() -> bool:
        return _apply(stack, auth) == 201

    await eventually(loans_knows, what="loans to learn the verification from identity's events")
    # the identifying data is readable in no table, dump or message
    dump = pg_dump(stack.admin_url, stack.namespace + "expensura_identity")
    messages = [
        v
        for _, v, _ in await topic_messages(
            stack.bootstrap_servers, events_topic("identity", stack.namespace)
        )
    ]
    for secret in (ident, card, "+8613800138000"):
        assert secret.encode() not in dump
        assert not [m for m in messages if secret.encode() in m]


@pytest.mark.obligation("USE-1")
async def test_a_mismatch_is_recorded_and_loans_stay_refused(stack: LocalStack) -> None:
    _, auth = tokens.user(stack)
    resp = _submit(stack, auth, "+8613800139999")
    assert resp.json()["state"] == "mismatch"
    assert _apply(stack, auth) == 403


@pytest.mark.obligation("USE-1")
async def test_agency_down_keeps_the_request_pending_and_retries_until_verified(
    stack: LocalStack,
) -> None:
    agency = stack.processes[AGENCY].url
    _, auth = tokens.user(stack)
    httpx.post(f"{agency}/sandbox/outage", json={"down": True}).raise_for_status()
    try:
        resp = _submit(stack, auth, "+8613800138001")
        assert resp.status_code == 202 and resp.json()["state"] == "pending"
        again = httpx.get(f"{stack.processes['identity'].url}/v1/me/verification", headers=auth)
        assert again.json()["state"] == "pending"
    finally:
        httpx.post(f"{agency}/sandbox/outage", json={"down": False}).raise_for_status()

    async def verified() -> bool:
        resp = httpx.get(f"{stack.processes['identity'].url}/v1/me/verification", headers=auth)
        return resp.json()["state"] == "verified"

    await eventually(verified, timeout=30, what="the retry after the outage")


@pytest.mark.obligation("USE-1")
def test_a_slow_agency_leaves_the_request_pending_not_lost(stack: LocalStack) -> None:
    _, auth = tokens.user(stack)
    resp = _submit(stack, auth, "+8613800135555")
    assert resp.status_code == 202 and resp.json()["state"] == "pending"
    assert _submit(stack, auth, "+8613800138000").status_code == 409  # still in progress


@pytest.mark.obligation("COL-2")
def test_malformed_id_and_card_numbers_are_refused_and_nothing_is_recorded(
    stack: LocalStack,
) -> None:
    _, auth = tokens.user(stack)
    idp, inside = stack.processes["identity"].url, stack.processes["identity"].internal_url
    head = httpx.get(f"{inside}/internal/log", params={"limit": 1}, auth=stack.operator).json()[
        "head"
    ]
    good_id, good_card = id_number(), bank_card()
    bad_id = good_id[:-1] + ("0" if good_id[-1] != "0" else "1")
    bad_card = good_card[:-1] + str((int(good_card[-1]) + 1) % 10)
    for case in ({"id_number": bad_id}, {"bank_card": bad_card}, {"id_number": "12345"}):
        resp = _submit(stack, auth, "+8613800138000", **case)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
    assert _submit(stack, auth, "13800138000").status_code == 422
    assert (
        httpx.get(f"{inside}/internal/log", params={"limit": 1}, auth=stack.operator).json()["head"]
        == head
    )
    assert httpx.post(f"{idp}/v1/me/verification", json={}).status_code == 401
