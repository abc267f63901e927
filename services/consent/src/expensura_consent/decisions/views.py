"""The one question every service asks before it uses or discloses personal data (RGT-4).

Answered from consent's own tables, which change in the same transaction as the events that
record them: once a withdrawal is acknowledged, no decision allows under that consent, while
other services' projections may still be catching up. Synchronous HTTP is the point here:
the answer must be current, not eventually consistent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy import select

from expensura_consent.decisions.asof import basis_as_of
from expensura_consent.records.domain import Decision, decide
from expensura_consent.records.store import consents_of, grounds_of
from expensura_consent.tables import decisions, ground_invocations
from expensura_events.auth import Principal
from expensura_events.contracts.decisions import Basis, BasisKind, DecisionOut, DecisionRequest
from expensura_events.envelope import utcnow
from expensura_events.fields import Identifier, Instant
from expensura_events.privacy.restrictions import permits, restriction
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Problem

# Services call these from inside; the API gateway does not route /internal outside.
router = APIRouter(tags=["decisions"])
Auditor = Annotated[
    Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER, StaffRole.ADMINISTRATOR))
]


class AsOf(BaseModel):
    subject_id: str
    purpose: Purpose
    at: datetime
    basis: Basis
    from_event: UUID | None


class NotFound(Problem):
    status, title = 404, "No such decision"


@router.post("/internal/decisions")
async def make_decision(body: DecisionRequest, rt: Runtime) -> DecisionOut:
    """May S's data of categories C be used for purpose P (and disclosed to R)? Write the
    decision id into the event that records what you then did."""
    now = utcnow()
    categories = {c.value for c in body.categories}
    async with rt.engine.begin() as conn:
        consents = await consents_of(conn, body.subject_id, body.purpose)
        grounds = await grounds_of(conn, body.subject_id, body.purpose)
        decision = decide(body.purpose, categories, body.recipient, now, consents, grounds)
        stopped = await restriction(conn, body.subject_id)
        if decision.allowed and not permits(stopped, body.purpose):
            # account cancellation stops every use but the law's (RUL-2)
            decision = Decision(False, f"processing stopped: the subject's account is {stopped}")
        decision_id = uuid4()
        await conn.execute(
            decisions.insert().values(
                decision_id=decision_id,
                subject_id=body.subject_id,
                purpose=body.purpose.value,
                categories=sorted(categories),
                recipient=body.recipient,
                requester=body.requester,
                allowed=decision.allowed,
                reason=decision.reason,
                consent_id=decision.consent_id,
                invocation_id=decision.ground.invocation_id if decision.ground else None,
                decided_at=now,
            )
        )
    if decision.consent_id is not None:
        basis = Basis(kind=BasisKind.CONSENT, consent_id=decision.consent_id)
    elif decision.ground is not None:
        basis = Basis(
            kind=BasisKind.LEGAL_GROUND,
            invocation_id=decision.ground.invocation_id,
            ground=decision.ground.ground,
            evidence_reference=decision.ground.evidence_reference,
        )
    else:
        basis = Basis(kind=BasisKind.NONE)
    return DecisionOut(
        decision_id=decision_id,
        subject_id=body.subject_id,
        purpose=body.purpose,
        recipient=body.recipient,
        allowed=decision.allowed,
        reason=decision.reason,
        basis=basis,
        decided_at=now,
    )


@router.get("/internal/decisions/{decision_id}", responses={404: {}})
async def get_decision(decision_id: UUID, rt: Runtime) -> DecisionOut:
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(select(decisions).where(decisions.c.decision_id == decision_id))
        ).one_or_none()
        ground = None
        if row is not None and row.invocation_id is not None:
            ground = (
                await conn.execute(
                    select(ground_invocations).where(
                        ground_invocations.c.invocation_id == row.invocation_id
                    )
                )
            ).one_or_none()
    if row is None:
        raise NotFound(f"No decision {decision_id}.")
    kind = (
        BasisKind.CONSENT
        if row.consent_id
        else BasisKind.LEGAL_GROUND
        if row.invocation_id
        else BasisKind.NONE
    )
    return DecisionOut(
        decision_id=row.decision_id,
        subject_id=row.subject_id,
        purpose=Purpose(row.purpose),
        recipient=row.recipient,
        allowed=row.allowed,
        reason=row.reason,
        basis=Basis(
            kind=kind,
            consent_id=row.consent_id,
            invocation_id=row.invocation_id,
            ground=ground.ground if ground else None,
            evidence_reference=ground.evidence_reference if ground else None,
        ),
        decided_at=row.decided_at,
    )


@router.get("/v1/subjects/{subject_id}/basis")
async def basis_at(
    subject_id: Annotated[Identifier, Path()],
    purpose: Purpose,
    at: Annotated[Instant, Query(description="ISO 8601 instant with its UTC offset")],
    rt: Runtime,
    auditor: Auditor,
) -> AsOf:
    """Which consent or legal ground was in effect for the subject and purpose at `at`,
    folded from consent's log (not its tables)."""
    async with rt.engine.connect() as conn:
        events = await rt.store.read_subject(conn, subject_id)
    found = basis_as_of(events, purpose, at)
    if found is None:
        return AsOf(
            subject_id=subject_id,
            purpose=purpose,
            at=at,
            basis=Basis(kind=BasisKind.NONE),
            from_event=None,
        )
    kind, ident, ground, evidence, event_id = found
    basis = (
        Basis(kind=BasisKind.CONSENT, consent_id=ident)
        if kind == BasisKind.CONSENT
        else Basis(
            kind=BasisKind.LEGAL_GROUND,
            invocation_id=ident,
            ground=ground,
            evidence_reference=evidence,
        )
    )
    return AsOf(subject_id=subject_id, purpose=purpose, at=at, basis=basis, from_event=event_id)
