"""Use cases of fraud and risk signals (USE-6): screening where the evidence arises (an
application received, its loan's payout), holding what a signal flags, and a risk
analyst's review.

Screening runs inside the caller's transaction, so an application and its hold commit
together: once an application can be read, so can its hold, and no assessment can slip in
between. The signals read only what `risk/domain.py` declares, from the device and card
the app presented (keyed on arrival with loans' `pseudonym` secret) and loans' own records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.catalog.loans_risk import ReviewOutcome, RiskSignalKind
from expensura_events.cipher import PSEUDONYM
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, LegalBasis, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, DataCategory, LegalGround, Purpose
from expensura_loans.applications import store as applications_store
from expensura_loans.applications.domain import application_stream
from expensura_loans.assessment import store as assessment_store
from expensura_loans.assessment.domain import NOTICE_TITLE
from expensura_loans.retention.service import record_envelope
from expensura_loans.risk import store
from expensura_loans.risk.domain import (
    SHARED_DEVICE_WINDOW,
    ApplicationSeen,
    Disbursement,
    PresentedEvidence,
    Pseudonyms,
    ReviewHold,
    ReviewStage,
    ReviewState,
    RiskSignal,
    conclude,
    hold_for,
    pseudonymise,
    refusal_notice,
    review_purpose,
    reviewer_role,
    signal_raised,
    signals_before_payout,
    signals_for,
)

PURPOSE = Purpose.SECURITY
# A creditor with consumer loans must run an identity-theft prevention programme: detect the
# red flags of its covered accounts and respond to them (FTC Red Flags Rule).
BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="FTC Red Flags Rule 16 CFR 681.1")
SCREENING = Actor.system("loans.risk")
# ECOA obliges the notice of a refusal (as assessment's).
NOTICE_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="ECOA Reg B 12 CFR 1002.9")

# What an analyst reads of a held application: the signals and their evidence, which derive
# from the device and the bank card it came with. Not the amount, term, purpose or income:
# no signal reads them, so the review does not either (minimisation).
EVIDENCE_FIELDS = ("risk_signals", "received_at")
EVIDENCE_CATEGORIES = (DataCategory.DEVICE_BASED, DataCategory.BANK_ACCOUNT)


class HeldForReview(Exception):
    """The application (or its payout) waits for a risk analyst: nothing proceeds."""

    def __init__(self, application_id: UUID, stage: ReviewStage) -> None:
        super().__init__(f"application {application_id} is held for a risk review ({stage})")
        self.application_id = application_id
        self.stage = stage


class RefusedAfterReview(Exception):
    """A risk analyst confirmed fraud: the application goes no further."""


class UnknownReview(LookupError):
    """No hold on that application."""


class ReviewAlreadyConcluded(Exception):
    def __init__(self, state: ReviewState) -> None:
        super().__init__(f"the review was already concluded: {state.value}")
        self.state = state


@dataclass(frozen=True)
class ReviewView:
    """A hold as the review queue lists it: which application, which step, which signals.
    Names no one and shows no value: reading it reads no personal data."""

    application_id: UUID
    stage: ReviewStage
    loan_id: UUID | None
    kinds: list[RiskSignalKind]
    state: ReviewState
    held_at: datetime
    concluded_at: datetime | None


@dataclass(frozen=True)
class ReviewEvidence:
    """What the analyst reads to decide: each signal's evidence, and when the application
    came (None: its applicant was erased)."""

    review: ReviewView
    signals: list[dict[str, Any]]
    received_at: datetime | None


def _view(row: store.StoredReview) -> ReviewView:
    return ReviewView(
        application_id=row.application_id,
        stage=row.stage,
        loan_id=row.loan_id,
        kinds=[RiskSignalKind(s["kind"]) for s in row.signals],
        state=row.state,
        held_at=row.held_at,
        concluded_at=row.concluded_at,
    )


async def pseudonyms(rt: ServiceRuntime, evidence: PresentedEvidence) -> Pseudonyms:
    """The presented ids keyed with loans' own secret (in the key store, readable by loans'
    role only): useless to anyone without it, stable across master-key rotations."""
    return pseudonymise(await rt.secrets.get(PSEUDONYM), evidence)


def _envelopes(
    rt: ServiceRuntime, subject_id: str, application_id: UUID, events: list[DomainEvent]
) -> list[EventEnvelope]:
    return [
        record_envelope(
            rt,
            event,
            stream_id=application_stream(application_id),
            subject_id=subject_id,
            actor=SCREENING,
            purpose=PURPOSE,
            legal_basis=BASIS,
        )
        for event in events
    ]


async def _hold(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    *,
    application_id: UUID,
    subject_id: str,
    stage: ReviewStage,
    loan_id: UUID | None,
    signals: tuple[RiskSignal, ...],
    at: datetime,
) -> list[EventEnvelope]:
    held = hold_for(application_id, signals)
    if held is None:
        return []
    _, event = held
    await store.add_review(
        conn,
        application_id=application_id,
        subject_id=subject_id,
        stage=stage,
        loan_id=loan_id,
        signals=list(signals),
        at=at,
    )
    raised: list[DomainEvent] = [signal_raised(application_id, s) for s in signals]
    return _envelopes(rt, subject_id, application_id, [*raised, event])


async def screen_application(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    *,
    subject_id: str,
    application_id: UUID | None,
    keyed: Pseudonyms,
    at: datetime,
) -> list[EventEnvelope]:
    """In the application's transaction: record what the attempt presented and, for an
    application received (`application_id`), the signals that fire and its hold. Returns the
    envelopes for the caller to append with its own; none when nothing fired. A refused
    attempt (no application) is only recorded: it tells later signals who presented the
    device, and whether they were verified."""
    # Attempts sharing a device, card or applicant are screened one after the other: two at
    # once would each miss the other in their counts (sorted: no two lock in reverse order).
    for key in sorted({keyed.device_id, keyed.card_fingerprint, subject_id}):
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"risk:{key}"},
        )
    if application_id is not None:
        seen = ApplicationSeen(
            application_id, subject_id, keyed.device_id, keyed.card_fingerprint, at
        )
        since = at - SHARED_DEVICE_WINDOW
        signals = signals_for(
            seen,
            applications=await store.applications_near(conn, seen, since),
            registrations=await store.device_presented(conn, keyed.device_id, since),
        )
    await store.add_observation(
        conn,
        application_id=application_id,
        subject_id=subject_id,
        device_hash=keyed.device_id,
        card_hash=keyed.card_fingerprint,
        at=at,
    )
    if application_id is None:
        return []
    return await _hold(
        rt,
        conn,
        application_id=application_id,
        subject_id=subject_id,
        stage=ReviewStage.APPLICATION,
        loan_id=None,
        signals=signals,
        at=at,
    )


async def ensure_not_held(conn: AsyncConnection, application_id: UUID) -> None:
    """Raises `HeldForReview` while a review is open, `RefusedAfterReview` after a
    confirmed fraud; a cleared review (or none) lets the application go on."""
    latest = await store.latest_review(conn, application_id)
    if latest is None or latest.state is ReviewState.CLEARED:
        return
    if latest.state is ReviewState.OPEN:
        raise HeldForReview(application_id, latest.stage)
    raise RefusedAfterReview(f"application {application_id} was refused after a risk review")


async def screen_disbursement(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    *,
    application_id: UUID,
    loan_id: UUID,
    subject_id: str,
    at: datetime,
) -> list[EventEnvelope]:
    """In the acceptance's transaction, before the payout: a payout account changed within
    the cooling-off holds the payout. Changes an earlier payout review already saw (made
    before that hold) are not evidence again. Returns the hold's envelopes, or none."""
    earlier = await store.latest_review_of_stage(conn, application_id, ReviewStage.DISBURSEMENT)
    changes = await store.payout_account_changes(
        conn, loan_id, None if earlier is None else earlier.held_at
    )
    signals = signals_before_payout(Disbursement(loan_id, subject_id, at), changes)
    return await _hold(
        rt,
        conn,
        application_id=application_id,
        subject_id=subject_id,
        stage=ReviewStage.DISBURSEMENT,
        loan_id=loan_id,
        signals=signals,
        at=at,
    )


async def record_payout_account_change(
    rt: ServiceRuntime, loan_id: UUID, subject_id: str, at: datetime | None = None
) -> None:
    """The account a loan is to be paid out to changed (checked before its payout)."""
    async with rt.engine.begin() as conn:
        await store.add_payout_account_change(conn, loan_id, subject_id, at or utcnow())


# --- the review -------------------------------------------------------------------------------


async def open_reviews(rt: ServiceRuntime) -> list[ReviewView]:
    """The review queue, oldest hold first."""
    async with rt.engine.connect() as conn:
        return [_view(r) for r in await store.open_reviews(conn)]


def _analyst(staff_id: str, roles: frozenset[str]) -> Actor:
    return Actor(kind=ActorKind.STAFF, id=staff_id, role=reviewer_role(roles).value)


async def review_evidence(
    rt: ServiceRuntime,
    application_id: UUID,
    *,
    staff_id: str,
    roles: frozenset[str],
    purpose: Purpose,
    case_reference: str,
) -> ReviewEvidence:
    """A risk analyst reads a hold's evidence for a purpose a review serves; the read is an
    event on the customer's access stream, committed before anything is shown. Raises
    `NotARiskAnalyst`, `PurposeNotServed`, `UnknownReview`."""
    actor = _analyst(staff_id, roles)
    purpose = review_purpose(purpose)
    async with rt.engine.connect() as conn:
        row = await store.latest_review(conn, application_id)
    if row is None:
        raise UnknownReview(str(application_id))
    async with rt.engine.begin() as conn:
        application = await applications_store.application(conn, application_id)
        await rt.record_access(
            conn,
            subject_id=row.subject_id,
            actor=actor,
            purpose=purpose,
            fields=list(EVIDENCE_FIELDS),
            categories=[c.value for c in EVIDENCE_CATEGORIES],
            case_reference=case_reference,
            legal_basis=BASIS,
        )
    return ReviewEvidence(
        review=_view(row),
        signals=row.signals,
        received_at=None if application is None else application.received_at,
    )


async def conclude_review(
    rt: ServiceRuntime,
    application_id: UUID,
    outcome: ReviewOutcome,
    *,
    staff_id: str,
    roles: frozenset[str],
    purpose: Purpose,
) -> ReviewView:
    """A risk analyst concludes the open hold: cleared, the application (or its payout) goes
    on; confirmed fraud, it is refused (an application not yet assessed gets its decision,
    `refused`, and the applicant the notice Reg B requires). One transaction, the review
    locked. Raises `NotARiskAnalyst`, `PurposeNotServed`, `UnknownReview`,
    `ReviewAlreadyConcluded`."""
    actor = _analyst(staff_id, roles)
    purpose = review_purpose(purpose)
    now = utcnow()
    async with rt.engine.begin() as conn:
        row = await store.latest_review(conn, application_id, lock=True)
        if row is None:
            raise UnknownReview(str(application_id))
        if row.state is not ReviewState.OPEN:
            raise ReviewAlreadyConcluded(row.state)
        hold = ReviewHold(application_id, tuple(_view(row).kinds), row.state)
        concluded, event = conclude(
            hold, outcome, reviewer_staff_id=staff_id, reviewer_role=reviewer_role(roles)
        )
        if not await store.conclude_review(conn, row.review_id, concluded.state, staff_id, now):
            raise ReviewAlreadyConcluded(row.state)
        envelopes = [
            record_envelope(
                rt,
                event,
                stream_id=application_stream(application_id),
                subject_id=row.subject_id,
                actor=actor,
                purpose=purpose,
                legal_basis=BASIS,
            )
        ]
        if outcome is ReviewOutcome.CONFIRMED_FRAUD:
            # An application held at receipt has no decision yet: the refusal is its
            # decision, and assessment will not run. A payout held after an approval keeps
            # the approval; the offer can no longer be accepted.
            await assessment_store.record_decision(conn, application_id, "refused", now)
            notice = CustomerNoticeRequested(
                notice_id=uuid5(NAMESPACE_URL, f"risk-refusal:{row.review_id}"),
                kind=NoticeKind.ADVERSE_ACTION,
                title=NOTICE_TITLE,
                body=refusal_notice(now),
            )
            envelopes.append(
                record_envelope(
                    rt,
                    notice,
                    stream_id=application_stream(application_id),
                    subject_id=row.subject_id,
                    actor=actor,
                    purpose=Purpose.COMMUNICATION,
                    legal_basis=NOTICE_BASIS,
                )
            )
        await rt.append(conn, envelopes)
    return ReviewView(
        application_id=row.application_id,
        stage=row.stage,
        loan_id=row.loan_id,
        kinds=list(hold.kinds),
        state=concluded.state,
        held_at=row.held_at,
        concluded_at=now,
    )
