"""The sharing gateway end to end: partners, agreements, disclosures, proof, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_consent.policy.service import INITIAL_VERSION
from expensura_events.catalog.loans_servicing import dispute_case_digest
from expensura_events.topology import events_topic
from expensura_events.vocabulary import Purpose
from expensura_ops.testing import borrowers, personal, tokens
from expensura_ops.testing.dumps import pg_dump
from expensura_ops.testing.signing import PartnerAuth, decode_key, signature_headers
from expensura_ops.testing.stack import LocalStack, eventually, topic_messages
from expensura_sharing_gateway.partners.domain import ALLOW_LISTS, PartnerKind

NOW = datetime.now(UTC)
YEAR = {
    "starts_at": (NOW - timedelta(days=1)).isoformat(),
    "ends_at": (NOW + timedelta(days=365)).isoformat(),
}


@dataclass
class PartnerClient:
    partner_id: str
    kind: str
    agreed_fields: set[str]
    token: str
    request_key: str
    client: httpx.Client

    @property
    def auth(self) -> PartnerAuth:
        """Signs each request as sent, with a fresh nonce."""
        return PartnerAuth(self.token, decode_key(self.request_key))

    def signed(
        self, body: bytes, nonce: str | None = None, ts: float | None = None
    ) -> dict[str, str]:
        """The headers of a signed POST /v1/disclosures with this body, as a partner sends
        it (and an eavesdropper captures it)."""
        return {
            "authorization": f"Bearer {self.token}",
            "content-type": "application/json",
            **signature_headers(
                decode_key(self.request_key),
                "POST",
                "/v1/disclosures",
                "",
                body,
                nonce=nonce or secrets.token_urlsafe(18),
                created=int(ts if ts is not None else time.time()),
            ),
        }

    def disclose(
        self, subject: str, purpose: str, fields: list[str], case: str | None = None
    ) -> httpx.Response:
        personal.record("a disclosure's case reference", case)
        resp = self.client.post(
            "/v1/disclosures",
            auth=self.auth,
            json={
                "subject_id": subject,
                "purpose": purpose,
                "fields": fields,
                "case_reference": case,
            },
        )
        if resp.status_code == 200:  # minimisation, checked on every response (SHR-2)
            allowed = ALLOW_LISTS[PartnerKind(self.kind)].get(Purpose(purpose), frozenset())
            assert set(resp.json()["data"]) <= set(fields) & allowed & self.agreed_fields
        else:
            assert "data" not in resp.json()
        return resp


async def _partner(
    stack: LocalStack,
    kind: str,
    purposes: list[str],
    fields: list[str],
    *,
    agreement: dict[str, str] | None = YEAR,
    inbound: bool = False,
    scopes: list[str] | None = None,
) -> PartnerClient:
    gw = httpx.Client(base_url=stack.processes["sharing-gateway"].url, timeout=15)
    officer = await tokens.staff(stack, "privacy-officer")
    partner_id = f"{kind}-{uuid.uuid4().hex[:6]}"
    gw.post(
        "/v1/partners",
        headers=officer,
        json={"partner_id": partner_id, "name": f"Test {kind}", "kind": kind},
    ).raise_for_status()
    # four eyes: a second officer approves the registration, agreement and credential
    await tokens.approve(stack, "sharing-gateway", f"/v1/partners/{partner_id}")
    if agreement is not None:
        signed = gw.post(
            f"/v1/partners/{partner_id}/agreements",
            headers=officer,
            json={
                "reference": f"NDA-{partner_id}",
                "purposes": purposes,
                "fields": fields,
                "inbound": inbound,
                **agreement,
            },
        )
        signed.raise_for_status()
        await tokens.approve(
            stack,
            "sharing-gateway",
            f"/v1/partners/{partner_id}/agreements/{signed.json()['agreement_id']}",
        )
    cred = gw.post(
        f"/v1/partners/{partner_id}/credentials",
        headers=officer,
        json={"scopes": scopes or purposes},
    ).json()
    await tokens.approve(
        stack, "sharing-gateway", f"/v1/partners/{partner_id}/credentials/{cred['client_id']}"
    )
    tok = gw.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": cred["client_id"],
            "client_secret": cred["client_secret"],
        },
    )
    tok.raise_for_status()
    agreed = set(fields) if agreement else set()
    await tokens.known_to_consent(stack, partner_id)  # before a consent may name it
    issued = tok.json()
    return PartnerClient(
        partner_id, kind, agreed, issued["access_token"], issued["request_key"], gw
    )


def _consent(
    stack: LocalStack,
    auth: dict[str, str],
    purpose: str,
    categories: list[str],
    recipients: list[str],
) -> dict[str, Any]:
    resp = httpx.post(
        f"{stack.processes['consent'].url}/v1/me/consents",
        headers=auth,
        json={
            "purpose": purpose,
            "categories": categories,
            "recipients": recipients,
            "policy_version": INITIAL_VERSION,
        },
    )
    resp.raise_for_status()
    return resp.json()


def _gateway_log(stack: LocalStack) -> list[dict[str, Any]]:
    items = httpx.get(
        f"{stack.processes['sharing-gateway'].internal_url}/internal/log",
        params={"limit": 5000},
        auth=stack.operator,
    ).json()["events"]
    return [json.loads(i["record"]) for i in items]


@pytest.mark.obligation("SHR-1", "SHR-2")
async def test_a_credit_bureau_gets_only_its_fields_on_consent_and_the_log_says_why(
    stack: LocalStack,
) -> None:
    subject, auth = tokens.user(stack, phone="+14155550101")
    bureau = await _partner(stack, "credit-bureau", ["credit-assessment"], ["phone", "email"])
    refused = bureau.disclose(subject, "credit-assessment", ["phone"])
    assert refused.status_code == 403  # no consent yet: nothing
    given = _consent(stack, auth, "credit-assessment", ["pd:Contact"], [bureau.partner_id])
    resp = bureau.disclose(subject, "credit-assessment", ["phone", "email", "nationality"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["data"] == {"phone": "+14155550101"}  # e-mail not on a bureau's allow-list
    assert body["basis"]["consent_id"] == given["consent_id"]
    made = [
        e
        for e in _gateway_log(stack)
        if e["event_type"] == "sharing.DisclosureMade" and e["subject_id"] == subject
    ]
    assert len(made) == 1
    assert made[0]["payload"]["fields"] == ["phone"]
    assert made[0]["payload"]["decision_id"] == body["decision_id"]
    assert made[0]["legal_basis"] == {"ground": "consent", "reference": given["consent_id"]}
    assert made[0]["actor"]["kind"] == "partner"
    assert made[0]["actor"]["id"] == bureau.partner_id
    # identity logged the read, with the partner as the actor
    idp_log = httpx.get(
        f"{stack.processes['identity'].internal_url}/internal/log",
        params={"limit": 5000},
        auth=stack.operator,
    ).json()["events"]
    reads = [
        json.loads(e["record"])
        for e in idp_log
        if e["subject_id"] == subject and e["event_type"] == "platform.PersonalDataAccessed"
    ]
    assert any(r["actor"]["id"] == bureau.partner_id for r in reads)
    refusals = [
        e
        for e in _gateway_log(stack)
        if e["event_type"] == "sharing.DisclosureRefused" and e["subject_id"] == subject
    ]
    assert len(refusals) == 1 and "consent" in refusals[0]["payload"]["reason"]


@pytest.mark.obligation("SHR-3")
async def test_without_an_active_agreement_a_partner_gets_nothing(stack: LocalStack) -> None:
    subject, auth = tokens.user(stack)
    none = await _partner(stack, "credit-bureau", ["credit-assessment"], ["phone"], agreement=None)
    ended = await _partner(
        stack,
        "credit-bureau",
        ["credit-assessment"],
        ["phone"],
        agreement={
            "starts_at": (NOW - timedelta(days=400)).isoformat(),
            "ends_at": (NOW - timedelta(days=35)).isoformat(),
        },
    )
    for partner in (none, ended):
        _consent(stack, auth, "credit-assessment", ["pd:Contact"], [partner.partner_id])
        resp = partner.disclose(subject, "credit-assessment", ["phone"])
        assert resp.status_code == 403
        assert "agreement" in resp.json()["detail"]
        assert "data" not in resp.json()


async def gateway_knows_case(stack: LocalStack, case: str) -> None:
    """Until the gateway's `dispute-cases` projection has loans' event opening the case."""
    engine = create_async_engine(stack.database_url("sharing-gateway", admin=True))
    try:

        async def known() -> bool:
            async with engine.connect() as conn:
                found = await conn.execute(
                    text("SELECT 1 FROM dispute_cases WHERE case_digest = :d"),
                    {"d": dispute_case_digest(case)},
                )
                return found.first() is not None

        await eventually(known, what=f"the gateway to learn case {case}")
    finally:
        await engine.dispose()


@pytest.mark.obligation("USE-8", "SHR-1", "SHR-2")
async def test_dispute_disclosure_needs_the_case_and_its_legal_basis(stack: LocalStack) -> None:
    """A dispute-resolution disclosure goes under a case the subject opened (a balance
    dispute in loans) and a legal ground naming the recipient; the attack: a collection
    agency naming a made-up case, or another customer's, gets nothing."""
    owner = await borrowers.borrower(stack, phone="+14155550102")
    subject = owner.subject_id
    other, other_auth = tokens.user(stack, phone="+14155550103")
    collector = await _partner(
        stack, "collection-agency", ["dispute-resolution"], ["phone", "email"]
    )
    law_firm = await _partner(stack, "law-firm", ["dispute-resolution"], ["phone", "email"])
    assert collector.disclose(subject, "dispute-resolution", ["phone"]).status_code == 403
    officer = await tokens.staff(stack, "privacy-officer")
    for who, partner in ((subject, collector), (subject, law_firm), (other, collector)):
        await tokens.legal_ground(
            stack,
            {
                "subject_id": who,
                "purpose": "dispute-resolution",
                "ground": "contract-at-users-request",
                "evidence_reference": "loan-agreement-77/§12",
                "categories": ["pd:Contact"],
                "recipients": [partner.partner_id],
                "reason": "Overdue loan 77, collection under the signed agreement",
                "expires_at": (NOW + timedelta(days=30)).isoformat(),
            },
            officer,
        )
    no_case = collector.disclose(subject, "dispute-resolution", ["phone"])
    assert no_case.status_code == 403 and "case" in no_case.json()["detail"]

    case = borrowers.dispute(stack, owner, "The payment of March 3 is missing from my balance")
    await gateway_knows_case(stack, case)
    for who, named in (
        (subject, "LOAN-77"),  # made up, though the ground and the agreement are in order
        (subject, f"LD-{secrets.token_hex(8).upper()}"),  # made up, in loans' own form
        (other, case),  # another customer's case
    ):
        refused = collector.disclose(who, "dispute-resolution", ["phone", "email"], case=named)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "not an open dispute of this subject" in refused.json()["detail"]
    got = collector.disclose(subject, "dispute-resolution", ["phone", "email"], case=case)
    assert got.status_code == 200, got.text
    assert set(got.json()["data"]) == {"phone", "email"}
    assert got.json()["basis"]["ground"] == "contract-at-users-request"
    lawyer = law_firm.disclose(subject, "dispute-resolution", ["phone", "email"], case=case)
    assert set(lawyer.json()["data"]) == {"email"}  # a law firm's list has no phone

    # each refusal is recorded, and each subject sees those about them
    for auth, refusals in ((owner.auth, 2), (other_auth, 1)):
        seen = httpx.get(
            f"{stack.processes['sharing-gateway'].url}/v1/me/disclosures", headers=auth, timeout=15
        ).json()
        reasons = [d["reason"] for d in seen if d["outcome"] == "refused"]
        assert reasons.count("the case is not an open dispute of this subject") == refusals


@pytest.mark.obligation("SHR-4")
async def test_there_is_no_sale_or_rent_purpose_to_ask_for(stack: LocalStack) -> None:
    bureau = await _partner(stack, "credit-bureau", ["credit-assessment"], ["phone"])
    for purpose in ("sale", "rent", "data-sale"):
        resp = bureau.disclose("anyone", purpose, ["phone"])
        assert resp.status_code == 422
    officer = await tokens.staff(stack, "privacy-officer")
    cred = bureau.client.post(
        f"/v1/partners/{bureau.partner_id}/credentials", headers=officer, json={"scopes": ["sale"]}
    )
    assert cred.status_code == 422


async def test_partner_authentication_replay_and_revocation(stack: LocalStack) -> None:
    subject, auth = tokens.user(stack)
    bureau = await _partner(stack, "credit-bureau", ["credit-assessment"], ["phone"])
    _consent(stack, auth, "credit-assessment", ["pd:Contact"], [bureau.partner_id])
    gw = bureau.client
    bad = gw.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "nope-123",
            "client_secret": "x" * 20,
        },
    )
    assert bad.status_code == 401
    body = {"subject_id": subject, "purpose": "credit-assessment", "fields": ["phone"]}
    content = json.dumps(body).encode()
    captured = bureau.signed(content, nonce="same-nonce-0123456789")
    assert gw.post("/v1/disclosures", headers=captured, content=content).status_code == 200
    replay = gw.post("/v1/disclosures", headers=captured, content=content)
    assert replay.status_code == 409
    stale = gw.post(
        "/v1/disclosures", headers=bureau.signed(content, ts=time.time() - 3600), content=content
    )
    assert stale.status_code == 401
    unsigned = gw.post(
        "/v1/disclosures", headers={"authorization": f"Bearer {bureau.token}"}, json=body
    )
    assert unsigned.status_code == 401
    out_of_scope = gw.post(
        "/v1/disclosures", auth=bureau.auth, json=body | {"purpose": "marketing"}
    )
    assert out_of_scope.status_code == 403
    # revoke: the token issued before it stops working at once
    officer = await tokens.staff(stack, "privacy-officer")
    claims = json.loads(__import__("base64").urlsafe_b64decode(bureau.token.split(".")[1] + "=="))
    gw.delete(
        f"/v1/partners/{bureau.partner_id}/credentials/{claims['client_id']}", headers=officer
    ).raise_for_status()
    assert gw.post("/v1/disclosures", auth=bureau.auth, json=body).status_code == 401


@pytest.mark.obligation("SEC-2")
async def test_a_captured_request_cannot_be_replayed_with_another_body_and_the_refusal_is_logged(
    stack: LocalStack,
) -> None:
    """The eavesdropper holds the bearer token and one signed request, not the request key:
    whether it sends its own body under the captured signature before the partner's request
    arrives or after, it is refused, nothing is disclosed, and the gateway's log says why."""
    subject, auth = tokens.user(stack, phone="+14155550177")
    other, _ = tokens.user(stack, phone="+14155550178")
    bureau = await _partner(stack, "credit-bureau", ["credit-assessment"], ["phone"])
    _consent(stack, auth, "credit-assessment", ["pd:Contact"], [bureau.partner_id])
    gw = bureau.client
    honest = json.dumps(
        {"subject_id": subject, "purpose": "credit-assessment", "fields": ["phone"]}
    ).encode()
    forged = honest.replace(subject.encode(), other.encode())
    captured = bureau.signed(honest)
    # sent first, under the captured signature and nonce: refused, and the nonce not spent
    first = gw.post("/v1/disclosures", headers=captured, content=forged)
    assert first.status_code == 401, first.text
    assert first.json()["title"] == "Request signature refused" and "data" not in first.json()
    sent = gw.post("/v1/disclosures", headers=captured, content=honest)
    assert sent.status_code == 200, sent.text
    # replayed after, with the other body or to another path: refused again
    assert gw.post("/v1/disclosures", headers=captured, content=forged).status_code == 401
    assert gw.post("/v1/inbound", headers=captured, content=honest).status_code == 401
    disclosed = [
        e
        for e in _gateway_log(stack)
        if e["event_type"] == "sharing.DisclosureMade" and e["subject_id"] == other
    ]
    assert disclosed == []
    refusals = [
        line
        for line in stack.processes["sharing-gateway"].log().splitlines()
        if "partner_request_refused" in line and bureau.partner_id in line
    ]
    assert sum("BadSignature" in line for line in refusals) == 3
    assert not any(subject in line or other in line for line in refusals)  # no subject named


@pytest.mark.obligation("RGT-4", "SHR-1")
async def test_no_disclosure_after_a_withdrawal_race_and_the_log_proves_it(
    stack: LocalStack,
) -> None:
    subject, auth = tokens.user(stack, phone="+14155550103")
    bureau = await _partner(stack, "credit-bureau", ["credit-assessment"], ["phone"])
    given = _consent(stack, auth, "credit-assessment", ["pd:Contact"], [bureau.partner_id])
    results: list[tuple[float, int]] = []
    stop, one_disclosed = asyncio.Event(), asyncio.Event()
    async with httpx.AsyncClient(base_url=stack.processes["sharing-gateway"].url, timeout=30) as gw:

        async def fire() -> None:
            while not stop.is_set():
                started = time.monotonic()
                resp = await gw.post(
                    "/v1/disclosures",
                    auth=bureau.auth,
                    json={
                        "subject_id": subject,
                        "purpose": "credit-assessment",
                        "fields": ["phone"],
                    },
                )
                results.append((started, resp.status_code))
                if resp.status_code == 200:
                    one_disclosed.set()

        firing = [asyncio.create_task(fire()) for _ in range(6)]
        # withdraw once a disclosure went through (a loaded machine takes seconds to answer
        # the first ones; a fixed second could withdraw before any was decided)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(one_disclosed.wait(), 60)
        withdrawn = httpx.delete(
            f"{stack.processes['consent'].url}/v1/me/consents/{given['consent_id']}", headers=auth
        )
        acknowledged = time.monotonic()
        assert withdrawn.status_code == 200
        # keep firing until enough requests that started after the acknowledgement have
        # been answered (a busy machine answers slowly; a fixed second may see none)
        deadline = acknowledged + 30
        while time.monotonic() < deadline:
            if sum(started > acknowledged for started, _ in results) >= 12:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*firing)
    before = [code for started, code in results if started < acknowledged]
    after = [code for started, code in results if started > acknowledged]
    assert 200 in before, "the race did not start with the consent in force"
    assert after and all(code == 403 for code in after), after
    proof = stack.cli(
        "disclosures",
        "prove-withdrawal",
        "--subject",
        subject,
        "--consent",
        given["consent_id"],
        service_name="sharing-gateway",
        check=False,
    )
    assert proof.returncode == 0, proof.stdout + proof.stderr
    said = " ".join(proof.stdout.split())
    assert "PROVEN" in said and "0 after" in said


@pytest.mark.obligation("SHR-1")
async def test_the_subject_sees_every_disclosure_to_whom_when_why_on_what_ground(
    stack: LocalStack,
) -> None:
    subject, auth = tokens.user(stack)
    bureau = await _partner(stack, "credit-bureau", ["credit-assessment"], ["phone"])
    bureau.disclose(subject, "credit-assessment", ["phone"])
    _consent(stack, auth, "credit-assessment", ["pd:Contact"], [bureau.partner_id])
    bureau.disclose(subject, "credit-assessment", ["phone"])
    seen = httpx.get(
        f"{stack.processes['sharing-gateway'].url}/v1/me/disclosures", headers=auth
    ).json()
    assert [(d["partner_id"], d["outcome"]) for d in seen] == [
        (bureau.partner_id, "refused"),
        (bureau.partner_id, "disclosed"),
    ]
    assert seen[1]["ground"] == "consent" and seen[1]["purpose"] == "credit-assessment"
    _, other = tokens.user(stack)
    assert (
        httpx.get(
            f"{stack.processes['sharing-gateway'].url}/v1/me/disclosures", headers=other
        ).json()
        == []
    )


@pytest.mark.obligation("COL-4")
async def test_inbound_partner_data_needs_consent_and_an_agreement_and_is_kept_encrypted(
    stack: LocalStack,
) -> None:
    subject, auth = tokens.user(stack)
    bureau = await _partner(
        stack,
        "credit-bureau",
        ["credit-assessment"],
        ["phone"],
        inbound=True,
        scopes=["credit-assessment", "inbound"],
    )
    report = f"score-{uuid.uuid4().hex[:8]}: 712, no defaults"
    offer = {
        "subject_id": subject,
        "purpose": "credit-assessment",
        "category": "pd:CreditRecord",
        "value": report,
    }
    refused = bureau.client.post("/v1/inbound", auth=bureau.auth, json=offer)
    assert refused.status_code == 403
    _consent(stack, auth, "credit-assessment", ["pd:CreditRecord"], [bureau.partner_id])
    accepted = bureau.client.post("/v1/inbound", auth=bureau.auth, json=offer)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["channel"] == "from-partner-with-consent"
    log = [e for e in _gateway_log(stack) if e["subject_id"] == subject]
    assert [e["event_type"] for e in log if "Inbound" in e["event_type"]] == [
        "sharing.InboundDataRefused",
        "sharing.InboundDataAccepted",
    ]
    dump = pg_dump(stack.admin_url, stack.namespace + "expensura_sharing_gateway")
    assert report.encode() not in dump
    messages = await topic_messages(
        stack.bootstrap_servers, events_topic("sharing-gateway", stack.namespace)
    )
    assert not [v for _, v, _ in messages if report.encode() in v]


@pytest.mark.obligation("RUL-3")
async def test_statistics_suppress_small_cells_and_every_release_is_in_the_ledger(
    fresh_stack: LocalStack,
) -> None:
    fresh_stack.start_all()
    bureau = await _partner(fresh_stack, "credit-bureau", ["credit-assessment"], ["phone"])
    collector = await _partner(fresh_stack, "credit-bureau", ["credit-assessment"], ["phone"])
    for i in range(12):
        subject, auth = tokens.user(fresh_stack)
        _consent(
            fresh_stack,
            auth,
            "credit-assessment",
            ["pd:Contact"],
            [bureau.partner_id, collector.partner_id],
        )
        assert bureau.disclose(subject, "credit-assessment", ["phone"]).status_code == 200
        if i < 3:
            collector.disclose(subject, "credit-assessment", ["phone"])
    officer = await tokens.staff(fresh_stack, "privacy-officer")
    gw = bureau.client
    assert (
        gw.post(
            "/v1/statistics/releases",
            headers=officer,
            json={"query": "disclosures-by-purpose", "k": 5},
        ).status_code
        == 422
    )
    by_partner = gw.post(
        "/v1/statistics/releases",
        headers=officer,
        json={"query": "disclosures-by-partner-and-purpose"},
    ).json()
    cells = {c["group"]["partner_id"]: c["count"] for c in by_partner["cells"]}
    assert cells == {bureau.partner_id: 12, collector.partner_id: None}  # 3 < k: withheld
    assert by_partner["suppressed"] == 1
    ledger = gw.get("/v1/statistics/releases", headers=officer).json()
    assert [(r["query"], r["k"], r["suppressed"]) for r in ledger] == [
        ("disclosures-by-partner-and-purpose", 10, 1)
    ]


@pytest.mark.obligation("TRF-1", "SEC-2")
async def test_a_transfer_needs_the_successors_commitment_or_reconsent(stack: LocalStack) -> None:
    officer = await tokens.staff(stack, "privacy-officer")
    gw = httpx.Client(base_url=stack.processes["sharing-gateway"].url)
    base = {"successor": "Acme Lending Inc.", "reason": "merger"}
    assert gw.post("/v1/transfers", headers=officer, json=base).status_code == 422
    bound = gw.post(
        "/v1/transfers",
        headers=officer,
        json=base | {"commitment_reference": "deed-2026-44 §7: bound by policy"},
    )
    assert bound.status_code == 201 and bound.json()["reconsent_required"] is False
    ask = gw.post("/v1/transfers", headers=officer, json=base | {"reconsent": True})
    assert ask.json()["reconsent_required"] is True
    # administrators release no data (four eyes, SEC-2)
    admin = await tokens.staff(stack, "administrator")
    assert (
        gw.post("/v1/transfers", headers=admin, json=base | {"reconsent": True}).status_code == 403
    )


@pytest.mark.obligation("PUB-1")
async def test_public_disclosure_needs_explicit_consent_for_it_or_a_legal_mandate(
    stack: LocalStack,
) -> None:
    subject, auth = tokens.user(stack)
    officer = await tokens.staff(stack, "privacy-officer")
    gw = httpx.Client(base_url=stack.processes["sharing-gateway"].url)
    ask = {
        "subject_id": subject,
        "fields": ["email"],
        "purpose": "communication",
        "case_reference": "PUB-2026-3",
    }
    personal.record("a case reference", ask["case_reference"])
    assert gw.post("/v1/public-disclosures", headers=officer, json=ask).status_code == 403
    _consent(stack, auth, "communication", ["pd:Contact"], ["public"])
    no_case = {k: v for k, v in ask.items() if k != "case_reference"}
    assert gw.post("/v1/public-disclosures", headers=officer, json=no_case).status_code == 422
    made = gw.post("/v1/public-disclosures", headers=officer, json=ask)
    assert made.status_code == 201, made.text
    assert made.json()["basis"]["kind"] == "consent"
    assert list(made.json()["data"]) == ["email"]


@pytest.mark.obligation("PUB-1", "SEC-2", "USE-11")
async def test_one_officer_cannot_make_data_public_alone_and_administrators_not_at_all(
    stack: LocalStack,
) -> None:
    """The attack: an officer invokes a ground naming the public and approves it themselves,
    or an administrator calls the releasing routes; neither releases anything."""
    subject, _ = tokens.user(stack)
    officer = await tokens.staff(stack, "privacy-officer")
    admin = await tokens.staff(stack, "administrator")
    consent = httpx.Client(base_url=stack.processes["consent"].url, timeout=15)
    gw = httpx.Client(base_url=stack.processes["sharing-gateway"].url, timeout=15)
    ground = {
        "subject_id": subject,
        "purpose": "legal-compliance",
        "ground": "other-law",
        "evidence_reference": "sha256:publication-order-5",
        "categories": ["pd:Contact"],
        "recipients": ["public"],
        "reason": "Publication ordered by the regulator",
        "expires_at": (NOW + timedelta(days=1)).isoformat(),
    }
    ask = {
        "subject_id": subject,
        "fields": ["email"],
        "purpose": "legal-compliance",
        "case_reference": "REG-2026-5",
    }
    personal.record("a case reference", ask["case_reference"])
    personal.record("a ground's evidence", ground["evidence_reference"])
    personal.record("a ground's reason", ground["reason"])
    assert consent.post("/v1/legal-grounds", headers=admin, json=ground).status_code == 403
    pending = consent.post("/v1/legal-grounds", headers=officer, json=ground)
    assert pending.status_code == 201 and pending.json()["state"] == "pending", pending.text
    approval = f"/v1/legal-grounds/{pending.json()['invocation_id']}/approval"
    yes = {"decision": "approve", "reason": "I checked it myself"}
    assert consent.post(approval, headers=officer, json=yes).status_code == 403
    assert consent.post(approval, headers=admin, json=yes).status_code == 403
    for who in (officer, admin):  # under a pending ground, and not by an administrator
        refused = gw.post("/v1/public-disclosures", headers=who, json=ask)
        assert refused.status_code == 403 and "data" not in refused.json()
    second = await tokens.staff(stack, "privacy-officer")
    approved = consent.post(approval, headers=second, json=yes)
    assert approved.status_code == 200 and approved.json()["state"] == "active", approved.text
    assert consent.post(approval, headers=second, json=yes).status_code == 409  # once
    assert gw.post("/v1/public-disclosures", headers=admin, json=ask).status_code == 403
    made = gw.post("/v1/public-disclosures", headers=officer, json=ask)
    assert made.status_code == 201, made.text
    assert made.json()["basis"]["kind"] == "legal-ground"
    for route in ("/v1/statistics/releases", "/v1/partners"):
        assert gw.post(route, headers=admin, json={}).status_code == 403


@pytest.mark.obligation("SEC-2", "SHR-3")
async def test_one_officer_cannot_give_a_partner_access_alone(stack: LocalStack) -> None:
    """The attack: an officer registers a partner, signs its agreement, issues its credential
    and approves all three themselves; an administrator tries the same. The credential gets
    no token and the agreement covers nothing until a second officer approves each."""
    gw = httpx.Client(base_url=stack.processes["sharing-gateway"].url, timeout=15)
    officer = await tokens.staff(stack, "privacy-officer")
    admin = await tokens.staff(stack, "administrator")
    second = await tokens.staff(stack, "privacy-officer")
    partner_id = f"credit-bureau-{uuid.uuid4().hex[:6]}"
    partner = {"partner_id": partner_id, "name": "Rogue bureau", "kind": "credit-bureau"}
    assert gw.post("/v1/partners", headers=admin, json=partner).status_code == 403
    registered = gw.post("/v1/partners", headers=officer, json=partner)
    assert registered.status_code == 201 and registered.json()["approval"] == "pending"
    terms = {"reference": "NDA-rogue", "purposes": ["credit-assessment"], "fields": ["phone"]}
    agreement = gw.post(f"/v1/partners/{partner_id}/agreements", headers=officer, json=terms | YEAR)
    assert agreement.status_code == 201 and agreement.json()["approval"] == "pending"
    cred = gw.post(
        f"/v1/partners/{partner_id}/credentials",
        headers=officer,
        json={"scopes": ["credit-assessment"]},
    ).json()
    assert cred["approval"] == "pending"
    approvals = [
        f"/v1/partners/{partner_id}/approval",
        f"/v1/partners/{partner_id}/agreements/{agreement.json()['agreement_id']}/approval",
        f"/v1/partners/{partner_id}/credentials/{cred['client_id']}/approval",
    ]
    yes = {"decision": "approve", "reason": "all in order"}
    grant = {
        "grant_type": "client_credentials",
        "client_id": cred["client_id"],
        "client_secret": cred["client_secret"],
    }
    for path in approvals:
        assert gw.post(path, headers=officer, json=yes).status_code == 403  # their own
        assert gw.post(path, headers=admin, json=yes).status_code == 403
    assert gw.post("/oauth/token", data=grant).status_code == 401  # pending: no token
    for path in approvals[1:]:
        assert gw.post(path, headers=second, json=yes).status_code == 200
    assert gw.post("/oauth/token", data=grant).status_code == 401  # the partner still pending
    approved = gw.post(approvals[0], headers=second, json=yes)
    assert approved.status_code == 200 and approved.json()["approval"] == "approved"
    assert gw.post(approvals[0], headers=second, json=yes).status_code == 409  # once
    assert gw.post("/oauth/token", data=grant).status_code == 200


async def test_bad_input_from_partners_and_staff_is_a_422_not_a_500(stack: LocalStack) -> None:
    gw = httpx.Client(base_url=stack.processes["sharing-gateway"].url, timeout=15)
    token = gw.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "nul\x00id",
            "client_secret": "x" * 20,
        },
    )
    assert token.status_code == 422, token.text
    assert token.headers["content-type"] == "application/problem+json"
    officer = await tokens.staff(stack, "privacy-officer")
    partner_id = f"court-{uuid.uuid4().hex[:6]}"
    gw.post(
        "/v1/partners",
        headers=officer,
        json={"partner_id": partner_id, "name": "Court", "kind": "court-or-arbitration-body"},
    ).raise_for_status()
    agreement = {
        "reference": "NDA-1",
        "purposes": ["dispute-resolution"],
        "fields": ["email"],
        "starts_at": NOW.isoformat(),
    }
    for ends_at in ("9999-12-31T23:00:00-05:00", "2027-01-01T00:00:00"):  # year 10000; no offset
        resp = gw.post(
            f"/v1/partners/{partner_id}/agreements",
            headers=officer,
            json=agreement | {"ends_at": ends_at},
        )
        assert resp.status_code == 422, resp.text
    named = gw.post(
        "/v1/partners",
        headers=officer,
        json={"partner_id": f"p-{uuid.uuid4().hex[:6]}", "name": "A\x00B", "kind": "law-firm"},
    )
    assert named.status_code == 422, named.text
