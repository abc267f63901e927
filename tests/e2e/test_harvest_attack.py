"""The attack that found the trust-boundary hole, tried again: harvest customers' contacts
through identity's release route, with nothing but an HTTP client and whatever credentials
a compromised service would have. Every step fails, each failure is in identity's log, and
the withdrawal proof still tells the truth."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from expensura_ops.testing import tokens
from expensura_ops.testing.stack import LocalStack

INITIAL_VERSION = "1"  # consent publishes it on first start


def _refusals(stack: LocalStack, subject: str) -> list[dict[str, Any]]:
    page = httpx.get(
        f"{stack.processes['identity'].internal_url}/internal/log",
        params={"limit": 5000},
        auth=stack.operator,
    ).json()["events"]
    records = [json.loads(e["record"]) for e in page]
    return [
        r["payload"] | {"actor": r["actor"]["id"]}
        for r in records
        if r["event_type"] == "identity.DataReleaseRefused" and r["subject_id"] == subject
    ]


def _release(
    stack: LocalStack, subject: str, decision_id: str, recipient: str, *, caller: str | None
) -> httpx.Response:
    headers = {} if caller is None else stack.service_headers("identity", caller=caller)
    return httpx.get(
        f"{stack.processes['identity'].internal_url}/internal/subjects/{subject}/disclosable",
        params={"fields": ["email", "phone"], "decision_id": decision_id, "recipient": recipient},
        headers=headers,
    )


def _decide(
    stack: LocalStack, subject: str, recipient: str, *, caller: str | None
) -> httpx.Response:
    headers = {} if caller is None else stack.service_headers("consent", caller=caller)
    return httpx.post(
        f"{stack.processes['consent'].internal_url}/internal/decisions",
        json={
            "subject_id": subject,
            "purpose": "credit-assessment",
            "categories": ["pd:Contact"],
            "recipient": recipient,
            "fields": ["email", "phone"],
            "requester": caller or "sharing-gateway",
        },
        headers=headers,
    )


@pytest.mark.obligation("SHR-1", "RGT-4", "SEC-3")
async def test_harvesting_contacts_through_identity_fails_at_every_step_and_is_logged(
    stack: LocalStack,
) -> None:
    subject, auth = tokens.user(stack, phone="+14155550142")
    bureau = await tokens.partner(
        stack, "credit-bureau", purposes=("credit-assessment",), fields=("email", "phone")
    )
    consented = httpx.post(
        f"{stack.processes['consent'].url}/v1/me/consents",
        headers=auth,
        json={
            "purpose": "credit-assessment",
            "categories": ["pd:Contact"],
            "recipients": [bureau.partner_id],
            "policy_version": INITIAL_VERSION,
        },
    )
    consented.raise_for_status()
    consent_id = consented.json()["consent_id"]
    gateway = "sharing-gateway"

    # 1. anonymous, as with curl: no decision minted, nothing released
    assert _decide(stack, subject, "evil-corp", caller=None).status_code == 401
    assert _release(stack, subject, str(uuid.uuid4()), "evil-corp", caller=None).status_code == 401
    # 2. with a compromised service's credentials (loans): not a caller of either route
    assert _decide(stack, subject, bureau.partner_id, caller="loans").status_code == 403
    assert (
        _release(stack, subject, str(uuid.uuid4()), bureau.partner_id, caller="loans").status_code
        == 403
    )
    # 3. even as the gateway: a recipient the subject never consented to gets a refusal
    refused = _decide(stack, subject, "evil-corp", caller=gateway).json()
    assert refused["allowed"] is False
    assert (
        _release(stack, subject, refused["decision_id"], "evil-corp", caller=gateway).status_code
        == 403
    )

    # the honest path works: the partner gets what the agreement and the consent allow
    disclosed = httpx.post(
        f"{stack.processes['sharing-gateway'].url}/v1/disclosures",
        auth=bureau.auth,
        json={"subject_id": subject, "purpose": "credit-assessment", "fields": ["email", "phone"]},
    )
    assert disclosed.status_code == 200, disclosed.text
    used = disclosed.json()["decision_id"]
    # 4. the grant it used cannot be replayed, nor turned to another subject
    assert _release(stack, subject, used, bureau.partner_id, caller=gateway).status_code == 403
    other, _ = tokens.user(stack)
    fresh = _decide(stack, subject, bureau.partner_id, caller=gateway).json()
    assert fresh["allowed"] is True
    assert (
        _release(stack, other, fresh["decision_id"], bureau.partner_id, caller=gateway).status_code
        == 403
    )
    # 5. a grant made before a withdrawal is dead after it
    before = _decide(stack, subject, bureau.partner_id, caller=gateway).json()
    assert before["allowed"] is True
    withdrawn = httpx.delete(
        f"{stack.processes['consent'].url}/v1/me/consents/{consent_id}", headers=auth
    )
    assert withdrawn.status_code == 200
    late = _release(stack, subject, before["decision_id"], bureau.partner_id, caller=gateway)
    assert late.status_code == 403, late.text

    # every failed release is in identity's log, with who asked and why
    logged = _refusals(stack, subject)
    callers = [r["caller"] for r in logged]
    assert callers.count(None) >= 1 and "loans" in callers and callers.count(gateway) >= 3
    reasons = " | ".join(r["reason"] for r in logged)
    for why in ("no service token", "not allowed", "already", "no longer"):
        assert why in reasons, (why, reasons)
    assert not any(("@" in json.dumps(r)) or "+1415555014" in json.dumps(r) for r in logged)

    # and the proof of the withdrawal tells the truth: one release before, none after
    proof = stack.cli(
        "disclosures", "prove-withdrawal", "--subject", subject, "--consent", consent_id,
        service_name=gateway, check=False,
    )  # fmt: skip
    said = " ".join(proof.stdout.split())
    assert proof.returncode == 0, proof.stdout + proof.stderr
    assert "PROVEN" in said and "0 after" in said and "identity" in said


@pytest.mark.obligation("SHR-1")
async def test_a_grant_expires_within_seconds(stack: LocalStack) -> None:
    subject, auth = tokens.user(stack, phone="+14155550143")
    bureau = await tokens.partner(
        stack, "credit-bureau", purposes=("credit-assessment",), fields=("email", "phone")
    )
    httpx.post(
        f"{stack.processes['consent'].url}/v1/me/consents",
        headers=auth,
        json={
            "purpose": "credit-assessment",
            "categories": ["pd:Contact"],
            "recipients": [bureau.partner_id],
            "policy_version": INITIAL_VERSION,
        },
    ).raise_for_status()
    decision = _decide(stack, subject, bureau.partner_id, caller="sharing-gateway").json()
    assert decision["allowed"] is True
    await asyncio.sleep(11)  # RELEASE_WITHIN_SECONDS is 10
    late = _release(
        stack, subject, decision["decision_id"], bureau.partner_id, caller="sharing-gateway"
    )
    assert late.status_code == 403
    assert "expired" in " ".join(r["reason"] for r in _refusals(stack, subject))
