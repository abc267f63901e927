"""Loans' SQL for risk signals (USE-6): what the signals saw of each application attempt,
payout-account changes, and the holds for review. Rows <-> the domain's records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_loans.risk.domain import (
    ApplicationSeen,
    DeviceRegistration,
    DisbursementAccountChange,
    ReviewStage,
    ReviewState,
    RiskSignal,
)
from expensura_loans.tables import (
    risk_observations,
    risk_payout_account_changes,
    risk_reviews,
    verified_subjects,
)


@dataclass(frozen=True)
class StoredReview:
    review_id: UUID
    application_id: UUID
    subject_id: str
    stage: ReviewStage
    loan_id: UUID | None
    signals: list[dict[str, Any]]  # [{kind, evidence}]
    state: ReviewState
    held_at: datetime
    concluded_at: datetime | None
    concluded_by: str | None


def _review(row: Any) -> StoredReview:
    return StoredReview(
        review_id=row.review_id,
        application_id=row.application_id,
        subject_id=row.subject_id,
        stage=ReviewStage(row.stage),
        loan_id=row.loan_id,
        signals=list(row.signals),
        state=ReviewState(row.state),
        held_at=row.held_at,
        concluded_at=row.concluded_at,
        concluded_by=row.concluded_by,
    )


# --- what the signals saw ---------------------------------------------------------------------


async def add_observation(
    conn: AsyncConnection,
    *,
    application_id: UUID | None,
    subject_id: str,
    device_hash: str,
    card_hash: str,
    at: datetime,
) -> None:
    await conn.execute(
        risk_observations.insert().values(
            observation_id=uuid4(),
            application_id=application_id,
            subject_id=subject_id,
            device_hash=device_hash,
            card_hash=card_hash,
            seen_at=at,
        )
    )


async def applications_near(
    conn: AsyncConnection, seen: ApplicationSeen, since: datetime
) -> list[ApplicationSeen]:
    """Applications received since `since` that share the device, the card or the
    applicant: the only ones any velocity or shared-device count can include."""
    o = risk_observations.c
    rows = await conn.execute(
        select(o.application_id, o.subject_id, o.device_hash, o.card_hash, o.seen_at).where(
            o.application_id.is_not(None),
            o.seen_at > since,
            or_(
                o.device_hash == seen.device_id,
                o.card_hash == seen.card_fingerprint,
                o.subject_id == seen.subject_id,
            ),
        )
    )
    return [
        ApplicationSeen(r.application_id, r.subject_id, r.device_hash, r.card_hash, r.seen_at)
        for r in rows
    ]


async def device_presented(
    conn: AsyncConnection, device_hash: str, since: datetime
) -> list[DeviceRegistration]:
    """Every account the device was presented on since `since` (applications and attempts
    refused for want of verification), each with whether that account is verified now."""
    o = risk_observations.c
    verified = (
        select(verified_subjects.c.subject_id)
        .where(verified_subjects.c.subject_id == o.subject_id)
        .exists()
    )
    rows = await conn.execute(
        select(o.subject_id, o.seen_at, verified.label("verified")).where(
            o.device_hash == device_hash, o.seen_at > since
        )
    )
    return [
        DeviceRegistration(device_hash, r.subject_id, bool(r.verified), r.seen_at) for r in rows
    ]


# --- payout-account changes -------------------------------------------------------------------


async def add_payout_account_change(
    conn: AsyncConnection, loan_id: UUID, subject_id: str, at: datetime
) -> None:
    await conn.execute(
        risk_payout_account_changes.insert().values(
            change_id=uuid4(), loan_id=loan_id, subject_id=subject_id, changed_at=at
        )
    )


async def payout_account_changes(
    conn: AsyncConnection, loan_id: UUID, after: datetime | None
) -> list[DisbursementAccountChange]:
    """The loan's changes, those after `after` only (changes a review already saw are not
    evidence again)."""
    c = risk_payout_account_changes.c
    query = select(c.loan_id, c.subject_id, c.changed_at).where(c.loan_id == loan_id)
    if after is not None:
        query = query.where(c.changed_at > after)
    rows = await conn.execute(query)
    return [DisbursementAccountChange(r.loan_id, r.subject_id, r.changed_at) for r in rows]


# --- holds ------------------------------------------------------------------------------------


async def add_review(
    conn: AsyncConnection,
    *,
    application_id: UUID,
    subject_id: str,
    stage: ReviewStage,
    loan_id: UUID | None,
    signals: list[RiskSignal],
    at: datetime,
) -> UUID:
    review_id = uuid4()
    await conn.execute(
        risk_reviews.insert().values(
            review_id=review_id,
            application_id=application_id,
            subject_id=subject_id,
            stage=stage.value,
            loan_id=loan_id,
            # Counts, windows and loan ids only: the pseudonymous ids stay in the observations.
            signals=[{"kind": s.kind.value, "evidence": dict(s.evidence)} for s in signals],
            state=ReviewState.OPEN.value,
            held_at=at,
        )
    )
    return review_id


async def latest_review(
    conn: AsyncConnection, application_id: UUID, *, lock: bool = False
) -> StoredReview | None:
    """The application's latest hold (open, or how the last one was concluded)."""
    query = (
        select(risk_reviews)
        .where(risk_reviews.c.application_id == application_id)
        .order_by(risk_reviews.c.held_at.desc())
        .limit(1)
    )
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _review(row)


async def latest_review_of_stage(
    conn: AsyncConnection, application_id: UUID, stage: ReviewStage
) -> StoredReview | None:
    row = (
        await conn.execute(
            select(risk_reviews)
            .where(
                risk_reviews.c.application_id == application_id,
                risk_reviews.c.stage == stage.value,
            )
            .order_by(risk_reviews.c.held_at.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else _review(row)


async def open_reviews(conn: AsyncConnection) -> list[StoredReview]:
    rows = await conn.execute(
        select(risk_reviews)
        .where(risk_reviews.c.state == ReviewState.OPEN.value)
        .order_by(risk_reviews.c.held_at)
    )
    return [_review(r) for r in rows]


async def conclude_review(
    conn: AsyncConnection, review_id: UUID, state: ReviewState, by: str, at: datetime
) -> bool:
    """Record the conclusion, once: False when the review was no longer open."""
    result = await conn.execute(
        update(risk_reviews)
        .where(
            risk_reviews.c.review_id == review_id,
            risk_reviews.c.state == ReviewState.OPEN.value,
        )
        .values(state=state.value, concluded_at=at, concluded_by=by)
    )
    return bool(result.rowcount)


async def delete_risk_state_of(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in (risk_observations, risk_payout_account_changes, risk_reviews):
        result = await conn.execute(delete(table).where(table.c.subject_id == subject_id))
        counts[table.name] = result.rowcount
    return counts
