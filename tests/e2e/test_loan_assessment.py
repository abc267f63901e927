"""Credit assessment end to end (USE-2): identity, consent, loans and incident as processes,
the sandbox credit bureau over HTTP, and the adverse-action notice in the SMTP sink.

The applicant consents to credit assessment; loans asks consent, pulls the report with a
permissible purpose, decides from the allow-listed inputs only, and records the decision,
its sealed inputs and reasons, and (for anything but an approval) the adverse-action notice,
which the one notification path mails to the applicant.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from expensura_events.runtime import ServiceRuntime
from expensura_loans.servicing.service import run_servicing_cycle
from expensura_ops.services import service_definitions
from expensura_ops.testing import personal, tokens
from expensura_ops.testing.stack import CREDIT_BUREAU_PARTNER, LocalStack, eventually

pytestmark = pytest.mark.obligation("USE-2")

CATEGORIES = ["pd:CreditRecord", "pd:CreditScore", "pd:Income"]
DELINQUENT = "Delinquent past or present credit obligations with others"


def application(amount_cents: int = 250_000) -> dict[str, Any]:
    return {
        "amount_cents": amount_cents,
        "term_months": 24,
        "purpose": "debt-consolidation",
        "stated_monthly_income_cents": 650_000,
    }


async def applicant(stack: LocalStack, profile: str) -> tuple[str, dict[str, str], str]:
    """A verified customer whose bureau file has `profile`; (subject, auth, e-mail)."""
    await bureau_registered(stack)
    email = f"applicant-{uuid.uuid4().hex[:10]}@example.com"
    subject, auth = tokens.user(stack, email=email)
    tokens.verify_real_name(stack, auth)
    resp = httpx.put(
        f"{stack.credit_bureau_url}/sandbox/consumers/{subject}", json={"profile": profile}
    )
    assert resp.status_code == 200, resp.text
    return subject, auth, email


async def bureau_registered(stack: LocalStack) -> None:
    """The sandbox bureau is a partner consent knows (once per stack): a consent to credit
    assessment names it, since a report pull tells the bureau who applied."""
    known = httpx.get(f"{stack.processes['consent'].url}/v1/recipients").json()
    if not any(r["recipient"] == CREDIT_BUREAU_PARTNER for r in known):
        await tokens.recipient(stack, "credit-bureau", partner_id=CREDIT_BUREAU_PARTNER)


def consent_to_assessment(stack: LocalStack, auth: dict[str, str]) -> str:
    resp = httpx.post(
        f"{stack.processes['consent'].url}/v1/me/consents",
        headers=auth,
        json={
            "purpose": "credit-assessment",
            "categories": CATEGORIES,
            "recipients": [CREDIT_BUREAU_PARTNER],
            "policy_version": "1",
        },
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["consent_id"])


async def apply(stack: LocalStack, auth: dict[str, str]) -> str:
    """Apply, once loans has learnt the verification from identity's events, from a device
    and with a card of the applicant's own (what the app sends for the risk signals, USE-6:
    none fires)."""
    evidence = {
        "expensura-device-id": str(uuid.uuid4()),
        "expensura-card-fingerprint": f"fp_{uuid.uuid4().hex}",
    }

    async def received() -> str | None:
        resp = httpx.post(
            f"{stack.processes['loans'].url}/v1/loan-applications",
            headers=auth | evidence,
            json=application(),
            timeout=15,
        )
        return str(resp.json()["application_id"]) if resp.status_code == 201 else None

    return await eventually(received, what="loans to learn the verification")


def assess(stack: LocalStack, auth: dict[str, str], application_id: str) -> httpx.Response:
    return httpx.post(
        f"{stack.processes['loans'].url}/v1/loan-applications/{application_id}/assessment",
        headers=auth,
        timeout=30,
    )


NOTICE = "loans.CustomerNoticeRequested"


def lifecycle(types: list[str]) -> list[str]:
    """The event types but the notices requested along them (USE-10)."""
    return [t for t in types if t != NOTICE]


def loans_events(stack: LocalStack, subject: str) -> list[dict[str, Any]]:
    resp = httpx.get(
        f"{stack.processes['loans'].internal_url}/internal/log",
        params={"after": 0, "limit": 5000},
        auth=stack.operator,
        timeout=15,
    )
    resp.raise_for_status()
    return [e for e in resp.json()["events"] if e.get("subject_id") == subject]


@pytest.mark.obligation("USE-10")
async def test_a_good_file_is_approved_on_consent_and_the_decision_is_final(
    stack: LocalStack,
) -> None:
    subject, auth, email = await applicant(stack, "good")
    application_id = await apply(stack, auth)
    consent_to_assessment(stack, auth)
    resp = assess(stack, auth, application_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["decision"] == "approved" and resp.json()["reasons"] == []
    again = assess(stack, auth, application_id)
    assert again.status_code == 409 and "approved" in again.json()["detail"]

    types = [e["event_type"] for e in loans_events(stack, subject)]
    assert types[-4:] == [
        "loans.CreditReportRequested",
        "loans.ApplicationAssessed",
        "loans.LoanOffered",  # the approval's offer, with its disclosure
        NOTICE,  # and its document (USE-10)
    ]
    # the offer document reaches the applicant through the one notification path
    [document] = stack.wait_for_mail(email, 2, timeout=60)[1:]  # after the sign-up's code
    assert document.subject == "Your loan offer and its Truth-in-Lending disclosure"
    for part in ("TRUTH-IN-LENDING DISCLOSURES", "Annual percentage rate", "Total of payments"):
        assert part in document.body, part
    assessed = next(
        e for e in loans_events(stack, subject) if e["event_type"] == "loans.ApplicationAssessed"
    )
    record = json.loads(assessed["record"])
    assert record["purpose"] == "credit-assessment"
    assert record["legal_basis"]["ground"] == "consent"
    # the inputs and reasons are sealed: no bureau figure reads in the log
    assert "delinquencies" not in assessed["record"]


@pytest.mark.obligation("USE-10")
async def test_a_poor_file_is_refused_and_the_adverse_action_notice_reaches_the_applicant(
    stack: LocalStack,
) -> None:
    subject, auth, email = await applicant(stack, "poor")
    application_id = await apply(stack, auth)
    consent_to_assessment(stack, auth)
    resp = assess(stack, auth, application_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["decision"] == "refused"
    assert resp.json()["reasons"][0] == DELINQUENT

    types = [e["event_type"] for e in loans_events(stack, subject)]
    assert types[-4:] == [
        "loans.CreditReportRequested",
        "loans.ApplicationAssessed",
        "loans.AdverseActionNoticeIssued",
        "loans.CustomerNoticeRequested",
    ]
    [notice] = stack.wait_for_mail(email, 2, timeout=60)[1:]  # after the sign-up's code
    assert notice.subject == "Your loan application"
    for part in (
        DELINQUENT,  # the principal reasons
        "Sandbox Credit Bureau",  # the bureau, which did not make the decision
        "did not make this decision",
        "free copy",  # FCRA: the free report within 60 days
        "Your credit score: 560",  # FCRA 615(a): the score used, its range and factors
        "Equal Credit Opportunity Act",  # ECOA notice
    ):
        assert part in notice.body, part
    personal.record("a credit score in a notice", "Your credit score: 560")


async def test_thin_and_frozen_files_cannot_be_assessed(stack: LocalStack) -> None:
    for profile, reason in (
        ("thin", "Insufficient length of credit history"),
        ("frozen", "Credit file frozen at the consumer's request"),
    ):
        _, auth, _ = await applicant(stack, profile)
        application_id = await apply(stack, auth)
        consent_to_assessment(stack, auth)
        resp = assess(stack, auth, application_id)
        assert resp.status_code == 200, resp.text
        assert resp.json()["decision"] == "cannot-assess"
        assert reason in resp.json()["reasons"]


async def test_without_consent_or_after_its_withdrawal_no_report_is_pulled(
    stack: LocalStack,
) -> None:
    subject, auth, _ = await applicant(stack, "good")
    first = await apply(stack, auth)
    refused = assess(stack, auth, first)
    assert refused.status_code == 403, refused.text

    consent_id = consent_to_assessment(stack, auth)
    withdrawn = httpx.delete(
        f"{stack.processes['consent'].url}/v1/me/consents/{consent_id}", headers=auth
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert assess(stack, auth, first).status_code == 403

    types = [e["event_type"] for e in loans_events(stack, subject)]
    assert types.count("loans.AssessmentNotPermitted") == 2
    assert "loans.CreditReportRequested" not in types
    state = httpx.get(f"{stack.credit_bureau_url}/sandbox/state").json()
    assert isinstance(state["inquiries"], int)


async def test_a_bureau_outage_answers_503_and_changes_nothing(stack: LocalStack) -> None:
    subject, auth, _ = await applicant(stack, "good")
    application_id = await apply(stack, auth)
    consent_to_assessment(stack, auth)
    httpx.put(f"{stack.credit_bureau_url}/sandbox/outage", json={"down": True})
    try:
        down = assess(stack, auth, application_id)
    finally:
        httpx.put(f"{stack.credit_bureau_url}/sandbox/outage", json={"down": False})
    assert down.status_code == 503, down.text
    assert "loans.CreditReportRequested" not in [
        e["event_type"] for e in loans_events(stack, subject)
    ]
    assert assess(stack, auth, application_id).json()["decision"] == "approved"


async def test_another_customers_application_is_not_found(stack: LocalStack) -> None:
    _, owner, _ = await applicant(stack, "good")
    application_id = await apply(stack, owner)
    _, stranger = tokens.user(stack)
    assert assess(stack, stranger, application_id).status_code == 404


def my_loans(stack: LocalStack, auth: dict[str, str]) -> list[dict[str, Any]]:
    resp = httpx.get(f"{stack.processes['loans'].url}/v1/loans", headers=auth, timeout=15)
    assert resp.status_code == 200, resp.text
    loans: list[dict[str, Any]] = resp.json()["loans"]
    return loans


@pytest.mark.obligation("USE-3")
async def test_an_approved_applicant_accepts_the_disclosed_offer_repays_once_per_key_and_pays_off(
    stack: LocalStack,
) -> None:
    subject, auth, _ = await applicant(stack, "good")
    application_id = await apply(stack, auth)
    consent_to_assessment(stack, auth)
    assert assess(stack, auth, application_id).json()["decision"] == "approved"

    [loan] = my_loans(stack, auth)
    disclosure = loan["disclosure"]
    assert loan["state"] == "offered" and loan["application_id"] == application_id
    schedule = disclosure["payment_schedule"]
    assert len(schedule) == application()["term_months"]
    # Reg Z: the finance charge is the total of payments less the amount financed
    assert (
        disclosure["finance_charge_cents"]
        == disclosure["total_of_payments_cents"] - disclosure["amount_financed_cents"]
    )
    assert sum(p["amount_cents"] for p in schedule) == disclosure["total_of_payments_cents"]
    loans_url = f"{stack.processes['loans'].url}/v1/loans/{loan['loan_id']}"

    not_shown = httpx.post(
        f"{loans_url}/acceptance", headers=auth, json={"disclosure_version": "reg-z/v0"}
    )
    assert not_shown.status_code == 409  # accepting terms one was not shown is refused
    accepted = httpx.post(
        f"{loans_url}/acceptance", headers=auth, json={"disclosure_version": disclosure["version"]}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "active"
    principal = accepted.json()["principal_outstanding_cents"]
    assert principal == application()["amount_cents"]

    # five concurrent retries of one payment: it applies once
    key = {"idempotency-key": f"pay-{uuid.uuid4().hex}"}
    async with httpx.AsyncClient(headers=auth, timeout=30) as client:
        answers = await asyncio.gather(
            *(
                client.post(f"{loans_url}/payments", headers=key, json={"amount_cents": 50_000})
                for _ in range(5)
            )
        )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201], [
        a.text for a in answers
    ]
    assert len({a.json()["to_principal_cents"] for a in answers}) == 1
    [after] = my_loans(stack, auth)
    assert after["paid_cents"] == 50_000
    assert (
        after["principal_outstanding_cents"] == principal - answers[0].json()["to_principal_cents"]
    )

    payoff = after["payoff_today_cents"]
    too_much = httpx.post(
        f"{loans_url}/payments",
        headers=auth | {"idempotency-key": f"pay-{uuid.uuid4().hex}"},
        json={"amount_cents": payoff + 1},
    )
    assert too_much.status_code == 422
    paid_off = httpx.post(
        f"{loans_url}/payments",
        headers=auth | {"idempotency-key": f"pay-{uuid.uuid4().hex}"},
        json={"amount_cents": payoff},
    )
    assert paid_off.status_code == 201, paid_off.text
    assert paid_off.json()["loan"]["state"] == "closed"
    assert paid_off.json()["loan"]["principal_outstanding_cents"] == 0

    all_types = [e["event_type"] for e in loans_events(stack, subject)]
    types = lifecycle(all_types)
    assert types.count("loans.PaymentReceived") == 2
    assert types[-3:] == ["loans.PaymentReceived", "loans.LoanPaidOff", "loans.LoanClosed"]
    # the offer document and one receipt per payment applied (none for the four retries)
    assert all_types.count(NOTICE) == 3
    assert "loans.LoanOffered" in types and "loans.LoanDisbursed" in types
    after_close = httpx.post(
        f"{loans_url}/payments",
        headers=auth | {"idempotency-key": f"pay-{uuid.uuid4().hex}"},
        json={"amount_cents": 100},
    )
    assert after_close.status_code == 409


@pytest.mark.obligation("USE-3")
async def test_an_approved_applicant_who_never_repays_is_missed_made_delinquent_and_charged_off(
    stack: LocalStack,
) -> None:
    """From the application over HTTP to a charge-off: the servicing worker's cycle is run as
    of the days the loan goes unpaid (the worker runs it hourly as of today), on loans' own
    database, and the borrower sees each state through the API."""
    subject, auth, _ = await applicant(stack, "good")
    application_id = await apply(stack, auth)
    consent_to_assessment(stack, auth)
    assert assess(stack, auth, application_id).json()["decision"] == "approved"
    [offer] = my_loans(stack, auth)
    accepted = httpx.post(
        f"{stack.processes['loans'].url}/v1/loans/{offer['loan_id']}/acceptance",
        headers=auth,
        json={"disclosure_version": offer["disclosure"]["version"]},
    )
    assert accepted.status_code == 200, accepted.text
    first_due = date.fromisoformat(offer["disclosure"]["payment_schedule"][0]["due_date"])

    rt = ServiceRuntime(service_definitions()["loans"], stack.settings("loans"))
    try:
        await run_servicing_cycle(rt, first_due)
        assert my_loans(stack, auth)[0]["state"] == "active"  # due today: not late yet
        await run_servicing_cycle(rt, first_due + timedelta(days=1))
        assert my_loans(stack, auth)[0]["state"] == "delinquent"
        await run_servicing_cycle(rt, first_due + timedelta(days=120))
    finally:
        await rt.close()
    [charged_off] = my_loans(stack, auth)
    assert charged_off["state"] == "charged-off"
    refused = httpx.post(  # a charged-off loan is no longer repaid through the app
        f"{stack.processes['loans'].url}/v1/loans/{offer['loan_id']}/payments",
        headers=auth | {"idempotency-key": f"pay-{uuid.uuid4().hex}"},
        json={"amount_cents": 100},
    )
    assert refused.status_code == 409

    types = lifecycle([e["event_type"] for e in loans_events(stack, subject)])
    assert types.count("loans.LoanBecameDelinquent") == 1
    assert types.count("loans.PaymentMissed") >= 4  # each installment due in 120 days, once
    assert types[-1] == "loans.LoanChargedOff"
    assert "loans.PaymentReceived" not in types
