"""Processing without consent on one of USE-11's ten grounds: recorded per use, reported."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select, update

from expensura_consent.purposes import taxonomy
from expensura_consent.recipients.projection import registered
from expensura_consent.records.domain import InvalidConsent, check_recipients
from expensura_consent.tables import ground_invocations
from expensura_events.auth import Principal
from expensura_events.catalog.consent import LegalGroundInvoked, LegalGroundRevoked
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.fields import Identifier, Instant, ShortText, SingleLine
from expensura_events.vocabulary import DataCategory, LegalGround, Purpose, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Problem

router = APIRouter(tags=["legal grounds"])
PrivacyOfficer = Annotated[
    Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER, StaffRole.ADMINISTRATOR))
]


class InvokeGround(BaseModel):
    subject_id: Identifier
    purpose: Purpose
    ground: LegalGround
    evidence_reference: Annotated[SingleLine, Field(min_length=3, max_length=500)]
    categories: Annotated[list[DataCategory], Field(min_length=1, max_length=20)]
    recipients: Annotated[list[Identifier], Field(max_length=20)] = []
    reason: Annotated[ShortText, Field(min_length=3)]
    expires_at: Instant

    @field_validator("ground")
    @classmethod
    def not_consent(cls, value: LegalGround) -> LegalGround:
        if value is LegalGround.CONSENT:
            raise ValueError("consent is given by the subject, not invoked")
        return value


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


class Report(BaseModel):
    group_by: str
    counts: dict[str, int]
    invocations: list[Invocation]


class InvalidInvocation(Problem):
    status, title = 422, "Invalid legal-ground invocation"


class NotFound(Problem):
    status, title = 404, "No such invocation"


def _out(row: Any) -> Invocation:
    return Invocation(
        invocation_id=row.invocation_id,
        subject_id=row.subject_id,
        purpose=row.purpose,
        ground=row.ground,
        evidence_reference=row.evidence_reference,
        categories=row.categories,
        recipients=row.recipients,
        reason=row.reason,
        invoked_by=f"{row.invoked_by_kind}:{row.invoked_by_id}",
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
    )


@router.post("/v1/legal-grounds", status_code=201, responses={403: {}, 422: {}})
async def invoke_ground(body: InvokeGround, officer: PrivacyOfficer, rt: Runtime) -> Invocation:
    """Record processing without consent: the ground, its evidence (e.g. the hash of a court
    order), who invoked it and why, its scope and its expiry."""
    now = utcnow()
    if body.expires_at <= now:
        raise InvalidInvocation("expires_at must be in the future")
    categories = sorted({c.value for c in body.categories})
    allowed = {c.value for c in taxonomy.current(body.purpose).categories}
    if extra := set(categories) - allowed:
        raise InvalidInvocation(f"{body.purpose.value} may not use {', '.join(sorted(extra))}")
    invocation_id = uuid4()
    async with rt.engine.begin() as conn:
        try:
            named = set(body.recipients)
            check_recipients(named, await registered(conn, named))
        except InvalidConsent as exc:
            raise InvalidInvocation(str(exc)) from None
        await conn.execute(
            ground_invocations.insert().values(
                invocation_id=invocation_id,
                subject_id=body.subject_id,
                purpose=body.purpose.value,
                ground=body.ground.value,
                categories=categories,
                recipients=sorted(body.recipients),
                evidence_reference=body.evidence_reference,
                reason=body.reason,
                invoked_by_kind=officer.kind.value,
                invoked_by_id=officer.id,
                created_at=now,
                expires_at=body.expires_at,
            )
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    LegalGroundInvoked(
                        invocation_id=invocation_id,
                        purpose=body.purpose,
                        ground=body.ground,
                        evidence_reference=body.evidence_reference,
                        categories=categories,
                        recipients=sorted(body.recipients),
                        reason=body.reason,
                        expires_at=body.expires_at,
                    ),
                    stream_id=f"ground-{invocation_id}",
                    subject_id=body.subject_id,
                    actor=Actor(kind=officer.kind, id=officer.id),
                    purpose=body.purpose,
                    legal_basis=LegalBasis(ground=body.ground, reference=body.evidence_reference),
                )
            ],
            expected_version=0,
        )
        row = (
            await conn.execute(
                select(ground_invocations).where(
                    ground_invocations.c.invocation_id == invocation_id
                )
            )
        ).one()
    return _out(row)


@router.delete("/v1/legal-grounds/{invocation_id}", responses={404: {}})
async def revoke_ground(invocation_id: UUID, officer: PrivacyOfficer, rt: Runtime) -> Invocation:
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(ground_invocations)
                .where(ground_invocations.c.invocation_id == invocation_id)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"No invocation {invocation_id}.")
        if row.revoked_at is None:
            await conn.execute(
                update(ground_invocations)
                .where(ground_invocations.c.invocation_id == invocation_id)
                .values(revoked_at=utcnow())
            )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        LegalGroundRevoked(
                            invocation_id=invocation_id, reason="revoked by officer"
                        ),
                        stream_id=f"ground-{invocation_id}",
                        subject_id=row.subject_id,
                        actor=Actor(kind=officer.kind, id=officer.id),
                        purpose=Purpose(row.purpose),
                        legal_basis=LegalBasis(
                            ground=LegalGround(row.ground), reference=row.evidence_reference
                        ),
                    )
                ],
            )
        row = (
            await conn.execute(
                select(ground_invocations).where(
                    ground_invocations.c.invocation_id == invocation_id
                )
            )
        ).one()
    return _out(row)


@router.get("/v1/legal-grounds/report")
async def ground_report(
    officer: PrivacyOfficer,
    rt: Runtime,
    group_by: Annotated[str, Query(pattern="^(ground|requester)$")] = "ground",
) -> Report:
    """Every processing without consent, counted per ground or per requester."""
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(select(ground_invocations).order_by(ground_invocations.c.created_at))
        ).all()
    invocations = [_out(r) for r in rows]
    counts = Counter(i.ground if group_by == "ground" else i.invoked_by for i in invocations)
    return Report(group_by=group_by, counts=dict(counts), invocations=invocations)
