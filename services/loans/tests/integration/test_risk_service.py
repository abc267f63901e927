"""Fraud and risk signals wired into the loan flow, against loans' real database: a signal
holds the application or its payout where the evidence arises, a held step changes nothing,
and a risk analyst's review (recorded where the customer sees it) clears or refuses it
(USE-6). Then the routes, over HTTP in process (SEC-2): who may reach the review (an
attacker with a customer's token, or staff without MFA or the risk-analyst role, may not),
what a held application's applicant is answered, and what the app may send as evidence.
Tokens there are checked by a stand-in verifier: what is under test is the routes' own gate,
after identity's token check."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from expensura_events.auth import Principal
from expensura_events.catalog.identity import EmailOwnershipProven
from expensura_events.catalog.identity_verification import RealNameVerified
from expensura_events.catalog.loans_risk import ReviewOutcome, RiskSignalKind
from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.envelope import Actor, EventEnvelope, new_event_id, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.streams import access_stream
from expensura_events.tables import event_log
from expensura_events.testing.tokens import IssuedTokens
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_events.web.app import create_app
from expensura_loans.app import service_definition
from expensura_loans.applications.domain import (
    ApplicationStatus,
    LoanApplication,
    LoanPurpose,
    LoanTerms,
    VerificationRequired,
    application_stream,
)
from expensura_loans.applications.projection import ProvenEmails, VerifiedSubjects
from expensura_loans.applications.service import apply_for_loan
from expensura_loans.assessment import store as assessment_store
from expensura_loans.assessment.service import DependencyDown, assess_application
from expensura_loans.erasure import erase_loans_state
from expensura_loans.risk import service as risk
from expensura_loans.risk.domain import (
    MAX_APPLICATIONS_PER_DEVICE,
    NotARiskAnalyst,
    PresentedEvidence,
    PurposeNotServed,
    ReviewStage,
    ReviewState,
)
from expensura_loans.servicing.domain import LoanState
from expensura_loans.servicing.service import accept_offer, loans_of, make_offer
from expensura_loans.tables import risk_observations

pytestmark = pytest.mark.obligation("USE-6")

ANALYST = frozenset({"risk-analyst"})


def _identity_event(
    subject: str, payload: EmailOwnershipProven | RealNameVerified
) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"identity-{uuid.uuid4()}",
        stream_version=1,
        subject_id=subject,
        actor=Actor.system("identity"),
        purpose=Purpose.IDENTITY_VERIFICATION,
        correlation_id=new_event_id(),
        payload=payload,
    )


async def customer(rt: ServiceRuntime, *, verify: bool = True) -> str:
    """A new customer as identity's events show them to loans: e-mail proven, verified."""
    subject = str(uuid.uuid4())
    await prove(rt, subject, verify=verify)
    return subject


async def prove(rt: ServiceRuntime, subject: str, *, verify: bool = True) -> None:
    async with rt.engine.begin() as conn:
        await ProvenEmails().apply(
            conn, _identity_event(subject, EmailOwnershipProven(method="one-time-code"))
        )
        if verify:
            verified = RealNameVerified(
                request_id=uuid.uuid4(),
                trust_framework="sandbox",
                verified_at=utcnow(),
                verifier="sandbox agency",
                transaction_id="tx-1",
                evidence="[]",
            )
            await VerifiedSubjects().apply(conn, _identity_event(subject, verified))


def evidence(device: str | None = None, card: str | None = None) -> PresentedEvidence:
    return PresentedEvidence(device or str(uuid.uuid4()), card or f"fp_{uuid.uuid4().hex}")


async def apply(rt: ServiceRuntime, subject: str, presented: PresentedEvidence) -> LoanApplication:
    return await apply_for_loan(
        rt, subject, LoanTerms(200_000, 12), LoanPurpose.OTHER, 600_000, evidence=presented
    )


async def stream_types(rt: ServiceRuntime, stream: str) -> list[str]:
    async with rt.engine.connect() as conn:
        return [e.event_type for e in await rt.store.read_stream(conn, stream)]


async def held_by_device_velocity(rt: ServiceRuntime) -> tuple[str, LoanApplication, str]:
    """Two people apply from one device, one more time in a day than a device may: the last
    application is held (each with a card of its own, each person within their own limit
    and two accounts on the device: only the device's velocity fires). Returns its
    applicant, the application and the raw device id."""
    device = str(uuid.uuid4())
    first, second = await customer(rt), await customer(rt)
    for subject in [first, first, second][:MAX_APPLICATIONS_PER_DEVICE]:
        received = await apply(rt, subject, evidence(device))
        assert received.status is ApplicationStatus.RECEIVED
    held = await apply(rt, second, evidence(device))
    assert held.status is ApplicationStatus.HELD_FOR_REVIEW
    return second, held, device


async def test_velocity_on_one_device_holds_the_application_with_its_signal_logged_sealed(
    rt: ServiceRuntime,
) -> None:
    _, held, device = await held_by_device_velocity(rt)
    stream = application_stream(held.application_id)
    assert await stream_types(rt, stream) == [
        "loans.LoanApplicationReceived",
        "loans.RiskSignalRaised",
        "loans.ApplicationHeldForReview",
    ]
    async with rt.engine.connect() as conn:
        _, raised, hold = await rt.store.read_stream(conn, stream)
        records = (
            await conn.execute(select(event_log.c.record).where(event_log.c.stream_id == stream))
        ).scalars()
        raw_log = b"".join(records)
        stored = (
            await conn.execute(
                select(risk_observations.c.device_hash).where(
                    risk_observations.c.application_id == held.application_id
                )
            )
        ).scalar_one()
    assert raised.payload.kind is RiskSignalKind.DEVICE_VELOCITY
    assert raised.payload.evidence == {"applications": 4, "window_hours": 24}
    assert raised.purpose is Purpose.SECURITY and raised.actor.kind is ActorKind.SYSTEM
    assert raised.payload.device_id == stored  # the keyed hash, readable with the key
    assert hold.payload.kinds == [RiskSignalKind.DEVICE_VELOCITY]
    # The raw id is never stored; its keyed hash travels sealed, never in plaintext.
    assert device not in stored and len(stored) == 64
    assert device.encode() not in raw_log and stored.encode() not in raw_log
    [queued] = [r for r in await risk.open_reviews(rt) if r.application_id == held.application_id]
    assert queued.stage is ReviewStage.APPLICATION and queued.kinds == [
        RiskSignalKind.DEVICE_VELOCITY
    ]


async def test_a_held_application_cannot_be_assessed_and_nothing_changes(
    rt: ServiceRuntime,
) -> None:
    subject, held, _ = await held_by_device_velocity(rt)
    stream = application_stream(held.application_id)
    before = await stream_types(rt, stream)
    with pytest.raises(risk.HeldForReview):
        await assess_application(rt, subject, held.application_id)
    async with rt.engine.connect() as conn:
        assert await assessment_store.decision_of(conn, held.application_id) is None
    assert await stream_types(rt, stream) == before


@pytest.mark.obligation("SEC-3")
async def test_the_analyst_s_review_records_the_read_for_the_customer_and_clears_the_hold(
    rt: ServiceRuntime,
) -> None:
    subject, held, _ = await held_by_device_velocity(rt)
    found = await risk.review_evidence(
        rt,
        held.application_id,
        staff_id="analyst-1",
        roles=ANALYST,
        purpose=Purpose.SECURITY,
        case_reference="RISK-1",
    )
    assert found.signals == [
        {"kind": "device-velocity", "evidence": {"applications": 4, "window_hours": 24}}
    ]
    assert found.received_at == held.received_at
    async with rt.engine.connect() as conn:
        [read] = await rt.store.read_stream(conn, access_stream(subject))
    assert isinstance(read.payload, PersonalDataAccessed)
    assert read.subject_id == subject and read.purpose is Purpose.SECURITY
    assert read.actor == Actor(kind=ActorKind.STAFF, id="analyst-1", role="risk-analyst")
    assert read.payload.case_reference == "RISK-1"
    assert read.payload.fields == ["received_at", "risk_signals"]

    cleared = await risk.conclude_review(
        rt,
        held.application_id,
        ReviewOutcome.CLEARED,
        staff_id="analyst-1",
        roles=ANALYST,
        purpose=Purpose.SECURITY,
    )
    assert cleared.state is ReviewState.CLEARED
    assert (await stream_types(rt, application_stream(held.application_id)))[-1] == (
        "loans.RiskReviewConcluded"
    )
    assert held.application_id not in {r.application_id for r in await risk.open_reviews(rt)}
    # Released: the assessment now goes past the hold, to consent (not running here).
    with pytest.raises(DependencyDown):
        await assess_application(rt, subject, held.application_id)
    with pytest.raises(risk.ReviewAlreadyConcluded):
        await risk.conclude_review(
            rt,
            held.application_id,
            ReviewOutcome.CONFIRMED_FRAUD,
            staff_id="analyst-2",
            roles=ANALYST,
            purpose=Purpose.SECURITY,
        )


async def test_confirmed_fraud_refuses_the_application_and_sends_the_notice(
    rt: ServiceRuntime,
) -> None:
    subject, held, _ = await held_by_device_velocity(rt)
    await risk.conclude_review(
        rt,
        held.application_id,
        ReviewOutcome.CONFIRMED_FRAUD,
        staff_id="analyst-1",
        roles=ANALYST,
        purpose=Purpose.CREDIT_ASSESSMENT,
    )
    async with rt.engine.connect() as conn:
        assert await assessment_store.decision_of(conn, held.application_id) == "refused"
        events = await rt.store.read_stream(conn, application_stream(held.application_id))
    concluded, notice = events[-2:]
    assert concluded.payload.outcome is ReviewOutcome.CONFIRMED_FRAUD
    assert concluded.actor.role == "risk-analyst"
    assert notice.event_type == "loans.CustomerNoticeRequested"
    assert notice.payload.kind.value == "adverse-action"
    assert "Unable to verify the authenticity" in notice.payload.body
    with pytest.raises(risk.RefusedAfterReview):
        await assess_application(rt, subject, held.application_id)


async def test_a_device_last_presented_by_an_unverified_account_holds_the_application(
    rt: ServiceRuntime,
) -> None:
    device = str(uuid.uuid4())
    unverified = await customer(rt, verify=False)
    with pytest.raises(VerificationRequired):  # refused, but the device is recorded
        await apply(rt, unverified, evidence(device))
    held = await apply(rt, await customer(rt), evidence(device))
    assert held.status is ApplicationStatus.HELD_FOR_REVIEW
    [review] = [r for r in await risk.open_reviews(rt) if r.application_id == held.application_id]
    assert review.kinds == [RiskSignalKind.UNVERIFIED_DEVICE_OWNER]

    await prove(rt, unverified)  # that account is verified since: the device is not suspect
    assert (await apply(rt, await customer(rt), evidence(device))).status is (
        ApplicationStatus.RECEIVED
    )


async def test_a_payout_account_changed_just_before_acceptance_holds_the_payout(
    rt: ServiceRuntime,
) -> None:
    subject = await customer(rt)
    application = await apply(rt, subject, evidence())
    async with rt.engine.begin() as conn:
        await rt.append(conn, await make_offer(rt, conn, application, utcnow()))
    [offer] = await loans_of(rt, subject)
    version = offer.disclosure.disclosure_version
    await risk.record_payout_account_change(
        rt, offer.loan_id, subject, utcnow() - timedelta(hours=5)
    )

    with pytest.raises(risk.HeldForReview):
        await accept_offer(rt, subject, offer.loan_id, version)
    [still] = await loans_of(rt, subject)
    assert still.state is LoanState.OFFERED and still.balance is None  # nothing paid out
    [review] = [
        r for r in await risk.open_reviews(rt) if r.application_id == application.application_id
    ]
    assert review.stage is ReviewStage.DISBURSEMENT and review.loan_id == offer.loan_id
    assert review.kinds == [RiskSignalKind.PAYOUT_ACCOUNT_CHANGED]
    with pytest.raises(risk.HeldForReview):  # again: still held, still nothing
        await accept_offer(rt, subject, offer.loan_id, version)

    await risk.conclude_review(
        rt,
        application.application_id,
        ReviewOutcome.CLEARED,
        staff_id="analyst-1",
        roles=ANALYST,
        purpose=Purpose.SECURITY,
    )
    # The change the review saw is not evidence again: the payout goes out.
    assert (await accept_offer(rt, subject, offer.loan_id, version)).state is LoanState.ACTIVE


async def test_only_a_risk_analyst_for_a_purpose_a_review_serves_reads_or_concludes(
    rt: ServiceRuntime,
) -> None:
    subject, held, _ = await held_by_device_velocity(rt)
    for roles in (frozenset({"customer-service"}), frozenset({"privacy-officer"}), frozenset()):
        with pytest.raises(NotARiskAnalyst):
            await risk.review_evidence(
                rt,
                held.application_id,
                staff_id="someone",
                roles=roles,
                purpose=Purpose.SECURITY,
                case_reference="RISK-2",
            )
        with pytest.raises(NotARiskAnalyst):
            await risk.conclude_review(
                rt,
                held.application_id,
                ReviewOutcome.CLEARED,
                staff_id="someone",
                roles=roles,
                purpose=Purpose.SECURITY,
            )
    with pytest.raises(PurposeNotServed):
        await risk.review_evidence(
            rt,
            held.application_id,
            staff_id="analyst-1",
            roles=ANALYST,
            purpose=Purpose.MARKETING,
            case_reference="RISK-2",
        )
    async with rt.engine.connect() as conn:  # nothing read was recorded, nothing concluded
        assert await rt.store.read_stream(conn, access_stream(subject)) == []
    assert held.application_id in {r.application_id for r in await risk.open_reviews(rt)}


async def test_what_the_signals_saw_is_erased_with_the_subject(rt: ServiceRuntime) -> None:
    subject, _, _ = await held_by_device_velocity(rt)
    async with rt.engine.begin() as conn:
        erased = await erase_loans_state(conn, subject)
        left = (
            await conn.execute(
                select(func.count()).where(risk_observations.c.subject_id == subject)
            )
        ).scalar_one()
    assert erased["risk_observations"] == 2 and erased["risk_reviews"] == 1 and left == 0


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
async def http(
    rt: ServiceRuntime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, IssuedTokens]]:
    verifier = IssuedTokens()
    monkeypatch.setattr(rt, "token_verifier", verifier)
    app = create_app(service_definition)
    app.state.runtime = rt
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://loans") as client:
        yield client, verifier


def staff(verifier: IssuedTokens, *roles: str, mfa: bool = True) -> dict[str, str]:
    return verifier.issue(
        Principal(kind=ActorKind.STAFF, id=f"staff-{uuid.uuid4().hex[:6]}", roles=roles, mfa=mfa)
    )


def user(verifier: IssuedTokens, subject: str) -> dict[str, str]:
    return verifier.issue(Principal(kind=ActorKind.USER, id=subject))


DETAIL = {"purpose": "security", "case_reference": "RISK-9"}
CLEAR = {"outcome": "cleared", "purpose": "security"}


@pytest.mark.obligation("SEC-2")
async def test_a_customer_cannot_reach_the_review_routes_not_even_for_their_own_hold(
    rt: ServiceRuntime, http: tuple[httpx.AsyncClient, IssuedTokens]
) -> None:
    client, verifier = http
    subject, held, _ = await held_by_device_velocity(rt)
    path = f"/v1/risk-reviews/{held.application_id}"
    for headers in (user(verifier, subject), user(verifier, str(uuid.uuid4()))):
        tries = [
            await client.get("/v1/risk-reviews", headers=headers),
            await client.get(path, params=DETAIL, headers=headers),
            await client.post(f"{path}/conclusion", json=CLEAR, headers=headers),
        ]
        assert [r.status_code for r in tries] == [403, 403, 403]
        assert {r.headers["content-type"] for r in tries} == {"application/problem+json"}
    anonymous = await client.post(f"{path}/conclusion", json=CLEAR)
    forged = await client.get("/v1/risk-reviews", headers={"authorization": "Bearer forged"})
    assert (anonymous.status_code, forged.status_code) == (401, 401)
    # Nothing was read or concluded: the hold is still open and the customer's access
    # stream is empty.
    async with rt.engine.connect() as conn:
        assert await rt.store.read_stream(conn, access_stream(subject)) == []
    analyst = staff(verifier, "risk-analyst")
    queue = (await client.get("/v1/risk-reviews", headers=analyst)).json()["reviews"]
    assert str(held.application_id) in {r["application_id"] for r in queue}


@pytest.mark.obligation("SEC-2")
async def test_staff_without_mfa_or_without_the_analyst_role_are_refused(
    rt: ServiceRuntime, http: tuple[httpx.AsyncClient, IssuedTokens]
) -> None:
    client, verifier = http
    _, held, _ = await held_by_device_velocity(rt)
    path = f"/v1/risk-reviews/{held.application_id}"
    for headers in (
        staff(verifier, "risk-analyst", mfa=False),
        staff(verifier, "customer-service"),
        staff(verifier, "privacy-officer", "security-officer", "administrator"),
    ):
        assert (await client.get("/v1/risk-reviews", headers=headers)).status_code == 403
        assert (await client.get(path, params=DETAIL, headers=headers)).status_code == 403
        concluded = await client.post(f"{path}/conclusion", json=CLEAR, headers=headers)
        assert concluded.status_code == 403


async def test_the_applicant_is_answered_409_held_for_review_then_the_analyst_clears_it(
    rt: ServiceRuntime, http: tuple[httpx.AsyncClient, IssuedTokens]
) -> None:
    client, verifier = http
    subject, held, _ = await held_by_device_velocity(rt)
    assessment = await client.post(
        f"/v1/loan-applications/{held.application_id}/assessment",
        headers=user(verifier, subject),
    )
    assert assessment.status_code == 409
    assert assessment.headers["content-type"] == "application/problem+json"
    assert assessment.json()["title"] == "Held for review"

    analyst = staff(verifier, "risk-analyst")
    path = f"/v1/risk-reviews/{held.application_id}"
    wrong = await client.get(path, params=DETAIL | {"purpose": "marketing"}, headers=analyst)
    assert wrong.status_code == 403
    detail = await client.get(path, params=DETAIL, headers=analyst)
    assert detail.status_code == 200
    assert detail.json()["signals"] == [
        {"kind": "device-velocity", "evidence": {"applications": 4, "window_hours": 24}}
    ]
    # The customer sees the read in their data (RGT-1's export of loans' records).
    mine = (await client.get("/v1/me/data", headers=user(verifier, subject))).json()["events"]
    [read] = [e for e in mine if e["event_type"] == "platform.PersonalDataAccessed"]
    assert read["actor"]["role"] == "risk-analyst" and read["purpose"] == "security"
    assert read["payload"]["case_reference"] == "RISK-9"

    cleared = await client.post(f"{path}/conclusion", json=CLEAR, headers=analyst)
    assert cleared.status_code == 200 and cleared.json()["state"] == "cleared"
    again = await client.post(f"{path}/conclusion", json=CLEAR, headers=analyst)
    assert again.status_code == 409


async def test_a_card_number_where_the_fingerprint_belongs_is_refused_and_nothing_kept(
    rt: ServiceRuntime, http: tuple[httpx.AsyncClient, IssuedTokens]
) -> None:
    client, verifier = http
    subject = await customer(rt)
    body = {
        "amount_cents": 100_000,
        "term_months": 12,
        "purpose": "other",
        "stated_monthly_income_cents": 500_000,
    }
    device = {"expensura-device-id": str(uuid.uuid4())}
    headers = user(verifier, subject) | device
    for card in ("4111 1111 1111 1111", "4111111111111111"):
        refused = await client.post(
            "/v1/loan-applications",
            json=body,
            headers=headers | {"expensura-card-fingerprint": card},
        )
        assert refused.status_code == 422
        assert "4111" not in refused.text
    missing = await client.post("/v1/loan-applications", json=body, headers=headers)
    assert missing.status_code == 422
    async with rt.engine.connect() as conn:
        kept = await conn.execute(
            select(func.count()).where(risk_observations.c.subject_id == subject)
        )
        assert kept.scalar_one() == 0
        assert await rt.store.read_subject(conn, subject) == []
    received = await client.post(
        "/v1/loan-applications",
        json=body,
        headers=headers | {"expensura-card-fingerprint": f"fp_{uuid.uuid4().hex}"},
    )
    assert received.status_code == 201 and received.json()["status"] == "received"
