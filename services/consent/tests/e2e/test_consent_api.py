"""The consent service end to end: real processes, real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from expensura_consent.policy.service import INITIAL_TEXT, INITIAL_VERSION
from expensura_ops.testing import personal, tokens
from expensura_ops.testing.stack import LocalStack, eventually

# Version 1 is what a fresh stack publishes from the policy text; apps name a published one.
MARKETING = {
    "purpose": "marketing",
    "categories": ["pd:Contact"],
    "policy_version": INITIAL_VERSION,
}


def _consent_url(stack: LocalStack) -> str:
    return stack.processes["consent"].url


def _inside_url(stack: LocalStack) -> str:
    return stack.processes["consent"].internal_url


def _decide(
    client: httpx.Client,
    subject: str,
    purpose: str = "marketing",
    categories: list[str] | None = None,
    recipient: str | None = None,
) -> dict[str, Any]:
    resp = client.post(
        "/internal/decisions",
        json={
            "subject_id": subject,
            "purpose": purpose,
            "categories": categories or ["pd:Contact"],
            "recipient": recipient,
            "requester": "sharing-gateway",
        },
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def consent(stack: LocalStack) -> httpx.Client:
    """The public listener: the app's and staff's API."""
    return httpx.Client(base_url=_consent_url(stack), timeout=10)


@pytest.fixture
def inside(stack: LocalStack) -> httpx.Client:
    """The internal listener, as the one service that asks for decisions."""
    return httpx.Client(
        base_url=_inside_url(stack), timeout=10, auth=stack.as_service("sharing-gateway")
    )


@pytest.mark.obligation("USE-7", "RGT-4")
def test_marketing_needs_consent_and_withdrawal_takes_effect_at_once(
    stack: LocalStack, consent: httpx.Client, inside: httpx.Client
) -> None:
    subject, auth = tokens.user(stack)
    before = _decide(inside, subject)
    assert before["allowed"] is False and before["basis"]["kind"] == "none"
    given = consent.post("/v1/me/consents", json=MARKETING, headers=auth)
    assert given.status_code == 201, given.text
    record = given.json()
    assert record["status"] == "dpv:ConsentGiven" and record["valid_for_processing"]
    allowed = _decide(inside, subject)
    assert allowed["allowed"] and allowed["basis"] == {
        "kind": "consent",
        "consent_id": record["consent_id"],
        "invocation_id": None,
        "ground": None,
        "evidence_reference": None,
    }
    withdrawn = consent.delete(f"/v1/me/consents/{record['consent_id']}", headers=auth)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "dpv:ConsentWithdrawn"
    assert _decide(inside, subject)["allowed"] is False
    # the decision ids are recorded: a caller's event can point at one
    looked_up = inside.get(f"/internal/decisions/{allowed['decision_id']}").json()
    assert looked_up["allowed"] is True


@pytest.mark.obligation("RGT-4")
async def test_no_decision_started_after_the_withdrawal_ack_allows(stack: LocalStack) -> None:
    subject, auth = tokens.user(stack)
    async with (
        httpx.AsyncClient(base_url=_consent_url(stack), timeout=30) as public,
        httpx.AsyncClient(
            base_url=_inside_url(stack), timeout=30, auth=stack.as_service("sharing-gateway")
        ) as client,
    ):
        record = (await public.post("/v1/me/consents", json=MARKETING, headers=auth)).json()
        results: list[tuple[float, bool]] = []
        stop = asyncio.Event()

        async def fire() -> None:
            while not stop.is_set():
                started = time.monotonic()
                resp = await client.post(
                    "/internal/decisions",
                    json={
                        "subject_id": subject,
                        "purpose": "marketing",
                        "categories": ["pd:Contact"],
                        "requester": "sharing-gateway",
                    },
                )
                results.append((started, resp.json()["allowed"]))

        firing = [asyncio.create_task(fire()) for _ in range(8)]
        await asyncio.sleep(0.5)
        resp = await public.delete(f"/v1/me/consents/{record['consent_id']}", headers=auth)
        acknowledged = time.monotonic()
        assert resp.status_code == 200
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*firing)
    before = [allowed for started, allowed in results if started < acknowledged]
    after = [allowed for started, allowed in results if started > acknowledged]
    assert any(before), "the race did not start with the consent in force"
    assert after and not any(after), f"{sum(after)} of {len(after)} allowed after the ack"


@pytest.mark.obligation("USE-11", "SEC-2", "SEC-3")
async def test_processing_without_consent_needs_a_recorded_ground_and_is_reported(
    stack: LocalStack, consent: httpx.Client, inside: httpx.Client
) -> None:
    subject, auth = tokens.user(stack)
    officer = await tokens.staff(stack, "privacy-officer")
    court = await tokens.recipient(stack, "court-or-arbitration-body")
    request = {
        "subject_id": subject,
        "purpose": "dispute-resolution",
        "ground": "criminal-investigation",
        "evidence_reference": "sha256:5f2b0c0e…court-order-2026-117",
        "categories": ["pd:Contact", "pd:LoanRecord"],
        "recipients": [court],
        "reason": "Production order in case 2026-117",
        "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }
    personal.record("a ground's evidence", request["evidence_reference"])
    personal.record("a ground's reason", request["reason"])
    no_ground = _decide(inside, subject, "dispute-resolution", ["pd:Contact"], court)
    assert no_ground["allowed"] is False
    # refused without a privacy officer with MFA, and for malformed grounds
    assert consent.post("/v1/legal-grounds", json=request).status_code == 401
    no_mfa = await tokens.staff(stack, "privacy-officer", mfa=False)
    assert consent.post("/v1/legal-grounds", json=request, headers=no_mfa).status_code == 403
    analyst = await tokens.staff(stack, "risk-analyst")
    assert consent.post("/v1/legal-grounds", json=request, headers=analyst).status_code == 403
    for bad in (
        {"ground": "consent"},
        {"ground": "because-we-can"},
        {"purpose": "sale"},
        {"recipients": ["district-court-nowhere"]},  # not a registered partner
    ):
        resp = consent.post("/v1/legal-grounds", json=request | bad, headers=officer)
        assert resp.status_code == 422, resp.text
    admin = await tokens.staff(stack, "administrator")
    assert consent.post("/v1/legal-grounds", json=request, headers=admin).status_code == 403
    invoked = consent.post("/v1/legal-grounds", json=request, headers=officer)
    assert invoked.status_code == 201, invoked.text
    # naming a partner, it waits for a second officer: nothing is allowed meanwhile
    assert invoked.json()["state"] == "pending"
    assert not _decide(inside, subject, "dispute-resolution", ["pd:Contact"], court)["allowed"]
    approval = f"/v1/legal-grounds/{invoked.json()['invocation_id']}/approval"
    yes = {"decision": "approve", "reason": "court order verified"}
    assert consent.post(approval, json=yes).status_code == 401
    for alone in (officer, admin, no_mfa, analyst):
        assert consent.post(approval, json=yes, headers=alone).status_code == 403
    assert (
        consent.post(approval, json=yes | {"decision": "maybe"}, headers=officer).status_code == 422
    )
    second = await tokens.staff(stack, "privacy-officer")
    approved = consent.post(approval, json=yes, headers=second)
    assert approved.status_code == 200 and approved.json()["state"] == "active", approved.text
    assert consent.post(approval, json=yes, headers=second).status_code == 409
    decision = _decide(inside, subject, "dispute-resolution", ["pd:Contact"], court)
    assert decision["allowed"] and decision["basis"]["ground"] == "criminal-investigation"
    # the answer names the invocation; its evidence stays sealed at consent
    assert decision["basis"]["evidence_reference"] is None
    assert decision["basis"]["invocation_id"] == invoked.json()["invocation_id"]
    # outside its scope: another recipient, another category
    assert not _decide(inside, subject, "dispute-resolution", ["pd:Contact"], "press")["allowed"]
    assert not _decide(inside, subject, "dispute-resolution", ["pd:OfficialID"], court)["allowed"]
    by_ground = consent.get("/v1/legal-grounds/report", headers=officer).json()
    assert by_ground["counts"]["criminal-investigation"] >= 1
    by_requester = consent.get(
        "/v1/legal-grounds/report", params={"group_by": "requester"}, headers=officer
    ).json()
    assert any(k.startswith("staff:") for k in by_requester["counts"])
    # the officers' reads of the subject's grounds are in the subject's own data (SEC-3)
    mine = consent.get("/v1/me/data", headers=auth).json()["events"]
    reads = [e for e in mine if e["event_type"] == "platform.PersonalDataAccessed"]
    assert len(reads) >= 2 and {r["actor"]["kind"] for r in reads} == {"staff"}
    assert {r["purpose"] for r in reads} == {"legal-compliance"}
    revoked = consent.delete(
        f"/v1/legal-grounds/{invoked.json()['invocation_id']}", headers=officer
    )
    assert revoked.json()["revoked"] is True
    assert not _decide(inside, subject, "dispute-resolution", ["pd:Contact"], court)["allowed"]


@pytest.mark.obligation("RUL-1", "SHR-4")
def test_unknown_purposes_and_a_sale_purpose_do_not_exist(
    stack: LocalStack, consent: httpx.Client, inside: httpx.Client
) -> None:
    subject, auth = tokens.user(stack)
    for purpose in ("sale", "rent", "whatever"):
        resp = inside.post(
            "/internal/decisions",
            json={
                "subject_id": subject,
                "purpose": purpose,
                "categories": ["pd:Contact"],
                "requester": "sharing-gateway",
            },
        )
        assert resp.status_code == 422
        assert resp.headers["content-type"] == "application/problem+json"
        given = consent.post("/v1/me/consents", json=MARKETING | {"purpose": purpose}, headers=auth)
        assert given.status_code == 422
    published = {p["purpose"] for p in consent.get("/v1/purposes").json()}
    assert "sale" not in published and "marketing" in published
    assert consent.get("/v1/me/consents", headers=auth).json() == []


def test_control_characters_and_naive_times_are_a_422_not_a_500(
    stack: LocalStack, consent: httpx.Client, inside: httpx.Client
) -> None:
    for path in ("/internal/known-subjects/a%00b", "/internal/known-subjects/a%0Ab"):
        resp = inside.get(path)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
    _, auth = tokens.user(stack)
    for bad in ({"expires_at": "2030-01-01T00:00:00"}, {"policy_version": "v\x001"}):
        resp = consent.post("/v1/me/consents", json=MARKETING | bad, headers=auth)
        assert resp.status_code == 422, resp.text
    assert consent.get("/v1/me/consents", headers=auth).json() == []


@pytest.mark.obligation("RGT-4")
async def test_a_signed_receipt_anyone_can_verify(stack: LocalStack, consent: httpx.Client) -> None:
    subject, auth = tokens.user(stack)
    bureau = await tokens.recipient(stack, "credit-bureau")
    record = consent.post(
        "/v1/me/consents",
        json={
            "purpose": "credit-assessment",
            "categories": ["pd:CreditRecord"],
            "recipients": [bureau],
            "policy_version": INITIAL_VERSION,
        },
        headers=auth,
    ).json()
    receipt = consent.get(f"/v1/me/consents/{record['consent_id']}/receipt", headers=auth).json()
    claims = receipt["claims"]
    purpose = claims["services"][0]["purposes"][0]
    assert purpose["third_party_disclosure"] and purpose["third_party_name"] == [bureau]
    assert claims["pii_principal_id"] == subject
    # verify offline with the published keys, as a third party would
    jwks = consent.get("/.well-known/consent-receipt-keys.json").json()
    keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(jwks).keys}
    kid = jwt.get_unverified_header(receipt["receipt"])["kid"]
    assert (
        jwt.decode(receipt["receipt"], keys[kid], algorithms=["EdDSA"])["consent_id"]
        == (record["consent_id"])
    )
    assert (
        consent.post("/v1/consent-receipts/verify", json={"receipt": receipt["receipt"]}).json()[
            "valid"
        ]
        is True
    )
    head, body, sig = receipt["receipt"].split(".")
    forged = f"{head}.{body[:-2]}AA.{sig}"
    assert (
        consent.post("/v1/consent-receipts/verify", json={"receipt": forged}).json()["valid"]
        is False
    )
    # another user cannot fetch it, nor withdraw it
    _, other = tokens.user(stack)
    assert (
        consent.get(f"/v1/me/consents/{record['consent_id']}/receipt", headers=other).status_code
        == 404
    )
    assert (
        consent.delete(f"/v1/me/consents/{record['consent_id']}", headers=other).status_code == 404
    )


@pytest.mark.obligation("RGT-4")
async def test_expired_consent_stops_allowing_and_is_logged(
    stack: LocalStack, consent: httpx.Client, inside: httpx.Client
) -> None:
    subject, auth = tokens.user(stack)
    expires = datetime.now(UTC) + timedelta(seconds=2)
    record = consent.post(
        "/v1/me/consents", json=MARKETING | {"expires_at": expires.isoformat()}, headers=auth
    ).json()
    assert _decide(inside, subject)["allowed"]

    async def expired() -> bool:
        return consent.get("/v1/me/consents", headers=auth).json()[0]["status"] == (
            "dpv:ConsentExpired"
        )

    await eventually(expired, timeout=20, what="the consent to expire")
    assert not _decide(inside, subject)["allowed"]
    log = inside.get("/internal/log", params={"limit": 5000}).json()["events"]
    assert any(
        e["event_type"] == "consent.ConsentExpired" and e["subject_id"] == subject for e in log
    )
    assert record["consent_id"]


@pytest.mark.obligation("RGT-4", "SEC-3")
async def test_as_of_answers_from_the_log(stack: LocalStack, consent: httpx.Client) -> None:
    subject, auth = tokens.user(stack)
    officer = await tokens.staff(stack, "privacy-officer")
    before = datetime.now(UTC)
    time.sleep(0.05)
    record = consent.post("/v1/me/consents", json=MARKETING, headers=auth).json()
    time.sleep(0.05)
    during = datetime.now(UTC)
    time.sleep(0.05)
    consent.delete(f"/v1/me/consents/{record['consent_id']}", headers=auth)
    time.sleep(0.05)
    after = datetime.now(UTC)

    def basis(at: datetime) -> dict[str, Any]:
        resp = consent.get(
            f"/v1/subjects/{subject}/basis",
            params={"purpose": "marketing", "at": at.isoformat()},
            headers=officer,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["basis"]

    assert basis(before)["kind"] == "none"
    assert basis(during) == {
        "kind": "consent",
        "consent_id": record["consent_id"],
        "invocation_id": None,
        "ground": None,
        "evidence_reference": None,
    }
    assert basis(after)["kind"] == "none"
    assert (
        consent.get(
            f"/v1/subjects/{subject}/basis",
            params={"purpose": "marketing", "at": after.isoformat()},
            headers=auth,
        ).status_code
        == 403
    )
    # each officer's read is in the subject's own data, as the subject sees it (SEC-3)
    mine = consent.get("/v1/me/data", headers=auth).json()["events"]
    reads = [e for e in mine if e["event_type"] == "platform.PersonalDataAccessed"]
    staff_reads = [r for r in reads if r["actor"]["kind"] == "staff"]
    assert len(staff_reads) == 3
    assert {r["actor"]["role"] for r in staff_reads} == {"privacy-officer"}


@pytest.mark.obligation("POL-1", "USE-10")
async def test_publishing_a_policy_version_notifies_every_user_exactly_once(
    fresh_stack: LocalStack,
) -> None:
    fresh_stack.start("identity")
    # Rounds every 0.2 s, not only when rung: the wait below then spans several rounds.
    fresh_stack.start("consent", EXPENSURA_WORKER_INTERVAL_SECONDS="0.2")
    consent = httpx.Client(base_url=fresh_stack.processes["consent"].url, timeout=10)
    inside = httpx.Client(
        base_url=fresh_stack.processes["consent"].internal_url,
        timeout=10,
        auth=fresh_stack.operator,
    )
    subjects = [tokens.user(fresh_stack)[0] for _ in range(7)]

    async def known() -> bool:
        return inside.get("/internal/known-subjects/count").json()["subjects"] == 7

    await eventually(known, what="consent to know every user")
    assert consent.get("/v1/policy-versions/current").json()["version"] == INITIAL_VERSION
    officer = await tokens.staff(fresh_stack, "privacy-officer")
    policy = {
        "version": "2026-12",
        "text": "The new policy text, word for word. " * 20,
        "summary": "Clearer retention periods",
        "effective_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }
    assert consent.post("/v1/policy-versions", json=policy).status_code == 401
    published = consent.post("/v1/policy-versions", json=policy, headers=officer)
    assert published.status_code == 201, published.text
    assert consent.post("/v1/policy-versions", json=policy, headers=officer).status_code == 409

    def notices() -> list[str]:
        log = inside.get("/internal/log", params={"limit": 5000}).json()["events"]
        return [
            e["subject_id"]
            for e in log
            if e["event_type"] == "consent.PolicyChangeNotificationRequested"
        ]

    async def everyone() -> bool:
        return set(notices()) == set(subjects)

    await eventually(everyone, what="a notice for every user")
    await asyncio.sleep(1.5)  # several more worker rounds: still exactly one each
    assert sorted(notices()) == sorted(subjects)
    assert consent.get("/v1/policy-versions/current").json()["version"] == "2026-12"


@pytest.mark.obligation("POL-2")
async def test_refusing_a_policy_version_starts_account_cancellation(stack: LocalStack) -> None:
    consent = httpx.Client(base_url=_consent_url(stack), timeout=10)
    idp = stack.processes["identity"].url
    officer = await tokens.staff(stack, "privacy-officer")
    version = f"v-{uuid.uuid4().hex[:6]}"
    consent.post(
        "/v1/policy-versions",
        headers=officer,
        json={
            "version": version,
            "text": "Another policy text entirely. " * 10,
            "summary": "x" * 5,
            "effective_at": datetime.now(UTC).isoformat(),
        },
    ).raise_for_status()
    agrees, agree_auth = tokens.user(stack)
    refuses, refuse_auth = tokens.user(stack)
    assert (
        consent.put(
            f"/v1/me/policy-versions/{version}", json={"accept": True}, headers=agree_auth
        ).status_code
        == 200
    )
    refused = consent.put(
        f"/v1/me/policy-versions/{version}", json={"accept": False}, headers=refuse_auth
    )
    assert refused.status_code == 200 and "cancellation" in refused.json()["next_step"]
    assert (
        consent.put(
            "/v1/me/policy-versions/nope", json={"accept": True}, headers=agree_auth
        ).status_code
        == 404
    )

    async def cancelling() -> bool:
        resp = httpx.get(f"{idp}/v1/me/cancellation", headers=refuse_auth)
        return resp.status_code == 200 and resp.json()["state"] == "cooling-off"

    await eventually(cancelling, what="identity to open the cancellation")
    assert httpx.get(f"{idp}/v1/me/cancellation", headers=agree_auth).status_code == 404
    assert agrees != refuses


def test_a_fresh_stack_has_the_policy_text_as_version_1_published_by_the_system(
    stack: LocalStack, consent: httpx.Client, inside: httpx.Client
) -> None:
    log = inside.get("/internal/log", params={"limit": 5000}).json()["events"]
    published = [
        json.loads(e["record"]) for e in log if e["event_type"] == "consent.PolicyVersionPublished"
    ]
    first = published[0]
    assert first["payload"]["version"] == INITIAL_VERSION
    assert first["actor"]["kind"] == "system"
    spec = Path(__file__).parents[4] / "docs" / "spec" / "privacy-policy.txt"
    assert first["payload"]["sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    assert INITIAL_TEXT.read_bytes() == spec.read_bytes()  # the shipped copy is the spec's
    assert [p["payload"]["version"] for p in published].count(INITIAL_VERSION) == 1


async def test_consent_refuses_an_unpublished_version_and_unknown_recipients(
    stack: LocalStack, consent: httpx.Client, inside: httpx.Client
) -> None:
    subject, auth = tokens.user(stack)
    bureau = await tokens.recipient(stack, "credit-bureau")
    credit = {
        "purpose": "credit-assessment",
        "categories": ["pd:CreditRecord"],
        "recipients": [bureau],
        "policy_version": INITIAL_VERSION,
    }
    head = inside.get("/internal/log", params={"limit": 1}).json()["head"]
    for bad in (
        {"policy_version": "never-published-7"},
        {"recipients": ["no-such-partner"]},
        {"recipients": [bureau, "no-such-partner"]},
    ):
        resp = consent.post("/v1/me/consents", json=credit | bad, headers=auth)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
    # nothing was recorded: no consent row, no consent event about the subject
    assert consent.get("/v1/me/consents", headers=auth).json() == []
    later = inside.get("/internal/log", params={"after": head, "limit": 5000}).json()["events"]
    assert not [e for e in later if e["subject_id"] == subject]
    # what exists is accepted: a published version, a registered partner, and the public
    assert consent.post("/v1/me/consents", json=credit, headers=auth).status_code == 201
    public = {"purpose": "communication", "categories": ["pd:Contact"], "recipients": ["public"]}
    given = consent.post(
        "/v1/me/consents", json=public | {"policy_version": INITIAL_VERSION}, headers=auth
    )
    assert given.status_code == 201, given.text
    listed = {r["recipient"]: r["kind"] for r in consent.get("/v1/recipients").json()}
    assert listed["public"] == "public" and listed[bureau] == "credit-bureau"
