"""Policy versions (POL-1, POL-2, USE-10): publish, notify every user once, record answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from expensura_consent.policy.service import POLICY_BASIS, publish_version
from expensura_consent.tables import policy_responses, policy_versions
from expensura_events.auth import Principal
from expensura_events.catalog.consent import (
    PolicyVersionAccepted,
    PolicyVersionRefused,
)
from expensura_events.envelope import Actor, utcnow
from expensura_events.fields import Identifier, Instant, LongText, ShortText
from expensura_events.vocabulary import ActorKind, Purpose, StaffRole
from expensura_events.web.auth import CurrentUser, Runtime, staff_with
from expensura_events.web.problems import Problem

router = APIRouter(tags=["policy versions"])
PrivacyOfficer = Annotated[
    Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER, StaffRole.ADMINISTRATOR))
]


class PublishPolicy(BaseModel):
    version: Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,49}$")]
    text: Annotated[LongText, Field(min_length=10)]
    summary: Annotated[ShortText, Field(min_length=3)]
    effective_at: Instant


class PolicyVersion(BaseModel):
    version: str
    sha256: str
    summary: str
    effective_at: datetime
    published_at: datetime


class PolicyAnswer(BaseModel):
    accept: bool


class Answered(BaseModel):
    version: str
    accepted: bool
    responded_at: datetime
    next_step: str | None = None


class VersionExists(Problem):
    status, title = 409, "Policy version already published"


class UnknownVersion(Problem):
    status, title = 404, "No such policy version"


@router.post("/v1/policy-versions", status_code=201, responses={409: {}})
async def publish(body: PublishPolicy, officer: PrivacyOfficer, rt: Runtime) -> PolicyVersion:
    """Publish a version; every user is then notified exactly once (PolicyChangeNotification
    requested per subject by the fan-out worker)."""
    async with rt.engine.begin() as conn:
        published = await publish_version(
            rt,
            conn,
            version=body.version,
            text=body.text,
            summary=body.summary,
            effective_at=body.effective_at,
            actor=Actor(kind=officer.kind, id=officer.id),
        )
    if published is None:
        raise VersionExists(f"Version {body.version} exists; publish a new one.")
    return PolicyVersion(
        version=published.version,
        sha256=published.sha256,
        summary=published.summary,
        effective_at=published.effective_at,
        published_at=published.published_at,
    )


@router.get("/v1/policy-versions/current", responses={404: {}})
async def current_version(rt: Runtime) -> PolicyVersion:
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(policy_versions).order_by(policy_versions.c.published_at.desc()).limit(1)
            )
        ).one_or_none()
    if row is None:
        raise UnknownVersion("No policy version has been published yet.")
    return PolicyVersion(
        version=row.version,
        sha256=row.sha256,
        summary=row.summary,
        effective_at=row.effective_at,
        published_at=row.published_at,
    )


@router.put("/v1/me/policy-versions/{version}", responses={404: {}})
async def answer(
    version: Annotated[Identifier, Path()], body: PolicyAnswer, caller: CurrentUser, rt: Runtime
) -> Answered:
    """Accept or refuse a version. Refusing starts the account-cancellation path (POL-2)."""
    now = utcnow()
    async with rt.engine.begin() as conn:
        known = (
            await conn.execute(
                select(policy_versions.c.version).where(policy_versions.c.version == version)
            )
        ).first()
        if known is None:
            raise UnknownVersion(f"No policy version {version}.")
        stmt = insert(policy_responses).values(
            version=version, subject_id=caller.id, accepted=body.accept, responded_at=now
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["version", "subject_id"],
                set_={"accepted": body.accept, "responded_at": now},
            )
        )
        event = (
            PolicyVersionAccepted(version=version)
            if body.accept
            else PolicyVersionRefused(version=version)
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=f"policy-answer-{version}-{caller.id}",
                    subject_id=caller.id,
                    actor=Actor(kind=ActorKind.USER, id=caller.id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=POLICY_BASIS,
                )
            ],
        )
    return Answered(
        version=version,
        accepted=body.accept,
        responded_at=now,
        next_step=None
        if body.accept
        else "account cancellation requested; withdraw it within the cooling-off period",
    )
