"""Processing without consent on one of USE-11's ten grounds: recorded per use, approved by a
second officer when it names recipients, reported."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, field_validator

from expensura_consent.grounds import service
from expensura_consent.grounds.domain import (
    MAX_CATEGORIES,
    MAX_RECIPIENTS,
    MIN_EVIDENCE_LENGTH,
    MIN_REASON_LENGTH,
    GroundRecord,
    Grouping,
    InvalidInvocation,
    InvocationNotFound,
    check_ground,
)
from expensura_consent.grounds.domain import Invocation as Asked
from expensura_consent.recipients.domain import UnknownRecipients
from expensura_events.auth import Principal
from expensura_events.envelope import Actor
from expensura_events.fields import Identifier, Instant, ShortText, SingleLine
from expensura_events.four_eyes import Approver, Verdict
from expensura_events.vocabulary import DataCategory, LegalGround, Purpose, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Problem

router = APIRouter(tags=["legal grounds"])
# Privacy officers only: a ground releases data, and administrators release none (SEC-2).
PrivacyOfficer = Annotated[Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER))]


class InvokeGround(BaseModel):
    subject_id: Identifier
    purpose: Purpose
    ground: LegalGround
    evidence_reference: Annotated[SingleLine, Field(min_length=MIN_EVIDENCE_LENGTH, max_length=500)]
    categories: Annotated[list[DataCategory], Field(min_length=1, max_length=MAX_CATEGORIES)]
    recipients: Annotated[list[Identifier], Field(max_length=MAX_RECIPIENTS)] = []
    reason: Annotated[ShortText, Field(min_length=MIN_REASON_LENGTH)]
    expires_at: Instant

    @field_validator("ground")
    @classmethod
    def not_consent(cls, value: LegalGround) -> LegalGround:
        # the domain's rule, checked here too so the schema documents it
        return check_ground(value)


class Invocation(BaseModel):
    invocation_id: UUID
    subject_id: str
    purpose: str
    ground: str
    evidence_reference: str
    categories: list[str]
    recipients: list[str]
    reason: str
    invoked_by: str
    created_at: datetime
    expires_at: datetime
    revoked: bool
    state: str
    approval: str
    decided_by: str | None
    decided_at: datetime | None


class Decide(BaseModel):
    decision: Verdict
    reason: Annotated[ShortText, Field(min_length=MIN_REASON_LENGTH)]


class Report(BaseModel):
    group_by: str
    counts: dict[str, int]
    invocations: list[Invocation]


class InvalidInvocationProblem(Problem):
    status, title = 422, "Invalid legal-ground invocation"


class InvocationNotFoundProblem(Problem):
    status, title = 404, "No such invocation"


def _out(record: GroundRecord) -> Invocation:
    if record.created_at is None:  # every stored invocation has one
        raise TypeError(f"invocation {record.invocation_id} was not read from the store")
    return Invocation(
        invocation_id=record.invocation_id,
        subject_id=record.subject_id,
        purpose=record.purpose.value,
        ground=record.ground.value,
        evidence_reference=record.evidence_reference,
        categories=sorted(record.categories),
        recipients=sorted(record.recipients),
        reason=record.reason,
        invoked_by=record.invoked_by,
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked=record.revoked,
        state=record.state.value,
        approval=record.approval.value,
        decided_by=record.decided_by,
        decided_at=record.decided_at,
    )


@router.post("/v1/legal-grounds", status_code=201, responses={403: {}, 422: {}})
async def invoke_ground(body: InvokeGround, officer: PrivacyOfficer, rt: Runtime) -> Invocation:
    """Record processing without consent: the ground, its evidence (e.g. the hash of a court
    order), who invoked it and why, its scope and its expiry. A ground naming recipients (a
    partner, the public) is `pending` and has no effect until a second privacy officer
    approves it (`POST /v1/legal-grounds/{id}/approval`)."""
    asked = Asked(
        subject_id=body.subject_id,
        purpose=body.purpose,
        ground=body.ground,
        evidence_reference=body.evidence_reference,
        categories=frozenset(c.value for c in body.categories),
        recipients=frozenset(body.recipients),
        reason=body.reason,
        expires_at=body.expires_at,
    )
    try:
        recorded = await service.invoke_ground(rt, asked, Actor(kind=officer.kind, id=officer.id))
    except (InvalidInvocation, UnknownRecipients) as exc:
        raise InvalidInvocationProblem(str(exc)) from None
    return _out(recorded)


@router.post(
    "/v1/legal-grounds/{invocation_id}/approval", responses={403: {}, 404: {}, 409: {}, 422: {}}
)
async def decide_request(
    invocation_id: UUID, body: Decide, officer: PrivacyOfficer, rt: Runtime
) -> Invocation:
    """A second privacy officer, never the one who asked, approves or rejects a pending
    ground, once."""
    approver = Approver(kind=officer.kind, id=officer.id, roles=officer.roles, mfa=officer.mfa)
    try:
        decided = await service.decide_request(
            rt, invocation_id, approver, body.decision, body.reason
        )
    except InvocationNotFound:
        raise InvocationNotFoundProblem(f"No invocation {invocation_id}.") from None
    except InvalidInvocation as exc:
        raise InvalidInvocationProblem(str(exc)) from None
    return _out(decided)


@router.delete("/v1/legal-grounds/{invocation_id}", responses={404: {}})
async def revoke_ground(invocation_id: UUID, officer: PrivacyOfficer, rt: Runtime) -> Invocation:
    try:
        revoked = await service.revoke_ground(
            rt, invocation_id, Actor(kind=officer.kind, id=officer.id)
        )
    except InvocationNotFound:
        raise InvocationNotFoundProblem(f"No invocation {invocation_id}.") from None
    return _out(revoked)


@router.get("/v1/legal-grounds/report")
async def ground_report(
    officer: PrivacyOfficer,
    rt: Runtime,
    group_by: Annotated[str, Query(pattern="^(ground|requester)$")] = "ground",
) -> Report:
    """Every processing without consent, counted per ground or per requester. Each subject
    in it sees the read in their data (`platform.PersonalDataAccessed`)."""
    reader = Actor(kind=officer.kind, id=officer.id, role=StaffRole.PRIVACY_OFFICER.value)
    counts, records = await service.report(rt, Grouping(group_by), reader)
    return Report(group_by=group_by, counts=counts, invocations=[_out(r) for r in records])
