"""A customer with a loan, made over HTTP as a customer gets one: signed up with a proven
e-mail, real-name verified, applied, consented to assessment, approved on a good bureau
file, and accepted the offer (disbursed, `active`). For tests of what follows a loan (a
balance dispute's case at the sharing gateway, USE-8)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from expensura_ops.testing import personal, tokens
from expensura_ops.testing.stack import CREDIT_BUREAU_PARTNER, LocalStack, eventually

ASSESSMENT_CATEGORIES = ["pd:CreditRecord", "pd:CreditScore", "pd:Income"]


@dataclass(frozen=True)
class Borrower:
    subject_id: str
    auth: dict[str, str]
    email: str
    loan_id: str


async def borrower(stack: LocalStack, *, phone: str | None = None) -> Borrower:
    loans = stack.processes["loans"].url
    async with httpx.AsyncClient(timeout=30) as client:
        known = (await client.get(f"{stack.processes['consent'].url}/v1/recipients")).json()
        if not any(r["recipient"] == CREDIT_BUREAU_PARTNER for r in known):
            await tokens.recipient(stack, "credit-bureau", partner_id=CREDIT_BUREAU_PARTNER)
        email = f"borrower-{uuid.uuid4().hex[:10]}@example.com"
        subject, auth = tokens.user(stack, email=email, phone=phone)
        tokens.verify_real_name(stack, auth)
        (
            await client.put(
                f"{stack.credit_bureau_url}/sandbox/consumers/{subject}", json={"profile": "good"}
            )
        ).raise_for_status()

        # what the app sends for the risk signals (USE-6): a device and a card of their own
        evidence = {
            "expensura-device-id": str(uuid.uuid4()),
            "expensura-card-fingerprint": f"fp_{uuid.uuid4().hex}",
        }

        async def applied() -> str | None:
            resp = await client.post(
                f"{loans}/v1/loan-applications",
                headers=auth | evidence,
                json={
                    "amount_cents": 250_000,
                    "term_months": 24,
                    "purpose": "debt-consolidation",
                    "stated_monthly_income_cents": 650_000,
                },
            )
            return str(resp.json()["application_id"]) if resp.status_code == 201 else None

        application_id = await eventually(applied, what="loans to learn the verification")
        (
            await client.post(
                f"{stack.processes['consent'].url}/v1/me/consents",
                headers=auth,
                json={
                    "purpose": "credit-assessment",
                    "categories": ASSESSMENT_CATEGORIES,
                    "recipients": [CREDIT_BUREAU_PARTNER],
                    "policy_version": "1",
                },
            )
        ).raise_for_status()
        assessed = await client.post(
            f"{loans}/v1/loan-applications/{application_id}/assessment", headers=auth
        )
        assert assessed.status_code == 200, assessed.text
        assert assessed.json()["decision"] == "approved", assessed.text
        [loan] = (await client.get(f"{loans}/v1/loans", headers=auth)).json()["loans"]
        accepted = await client.post(
            f"{loans}/v1/loans/{loan['loan_id']}/acceptance",
            headers=auth,
            json={"disclosure_version": loan["disclosure"]["version"]},
        )
        assert accepted.status_code == 200, accepted.text
    return Borrower(subject, auth, email, str(loan["loan_id"]))


def dispute(stack: LocalStack, who: Borrower, reason: str) -> str:
    """The borrower disputes their balance; the case reference loans opened. (Both are
    personal, kept sealed: the reference ties a case to the borrower, and is what a partner
    must quote to be given their data.)"""
    personal.record("a dispute's reason", reason)
    resp = httpx.post(
        f"{stack.processes['loans'].url}/v1/loans/{who.loan_id}/disputes",
        headers=who.auth,
        json={"reason": reason},
        timeout=15,
    )
    assert resp.status_code == 201, resp.text
    case = str(resp.json()["case_reference"])
    personal.record("a dispute's case reference", case)
    return case
