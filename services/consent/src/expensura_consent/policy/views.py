"""Policy versions (POL-1, POL-2, USE-10): publish, notify every user once, record answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from expensura_consent.policy import service
from expensura_consent.policy.domain import (
    MIN_SUMMARY_LENGTH,
    MIN_TEXT_LENGTH,
    VERSION_PATTERN,
    InvalidVersion,
    UnknownVersion,
    VersionExists,
)
from expensura_consent.policy.domain import PolicyVersion as Version
from expensura_events.auth import Principal
from expensura_events.envelope import Actor
from expensura_events.fields import Identifier, Instant, LongText, ShortText
from expensura_events.vocabulary import StaffRole
from expensura_events.web.auth import CurrentUser, Runtime, staff_with
from expensura_events.web.problems import Problem

router = APIRouter(tags=["policy versions"])
PrivacyOfficer = Annotated[
    Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER, StaffRole.ADMINISTRATOR))
]


class PublishPolicy(BaseModel):
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    text: Annotated[LongText, Field(min_length=MIN_TEXT_LENGTH)]
    summary: Annotated[ShortText, Field(min_length=MIN_SUMMARY_LENGTH)]
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


class VersionExistsProblem(Problem):
    status, title = 409, "Policy version already published"


class InvalidVersionProblem(Problem):
    status, title = 422, "Invalid policy version"


class UnknownVersionProblem(Problem):
    status, title = 404, "No such policy version"


def _out(version: Version) -> PolicyVersion:
    return PolicyVersion(
        version=version.version,
        sha256=version.sha256,
        summary=version.summary,
        effective_at=version.effective_at,
        published_at=version.published_at,
    )


@router.post("/v1/policy-versions", status_code=201, responses={409: {}})
async def publish(body: PublishPolicy, officer: PrivacyOfficer, rt: Runtime) -> PolicyVersion:
    """Publish a version; every user is then notified exactly once (PolicyChangeNotification
    requested per subject by the fan-out worker)."""
    try:
        published = await service.publish(
            rt,
            version=body.version,
            text=body.text,
            summary=body.summary,
            effective_at=body.effective_at,
            actor=Actor(kind=officer.kind, id=officer.id),
        )
    except InvalidVersion as exc:
        raise InvalidVersionProblem(str(exc)) from None
    except VersionExists:
        raise VersionExistsProblem(f"Version {body.version} exists; publish a new one.") from None
    return _out(published)


@router.get("/v1/policy-versions/current", responses={404: {}})
async def current_version(rt: Runtime) -> PolicyVersion:
    try:
        return _out(await service.current(rt))
    except UnknownVersion:
        raise UnknownVersionProblem("No policy version has been published yet.") from None


@router.put("/v1/me/policy-versions/{version}", responses={404: {}})
async def answer(
    version: Annotated[Identifier, Path()], body: PolicyAnswer, caller: CurrentUser, rt: Runtime
) -> Answered:
    """Accept or refuse a version. Refusing starts the account-cancellation path (POL-2)."""
    try:
        given = await service.answer_version(rt, caller.id, version, body.accept)
    except UnknownVersion:
        raise UnknownVersionProblem(f"No policy version {version}.") from None
    return Answered(
        version=given.version,
        accepted=given.accepted,
        responded_at=given.responded_at,
        next_step=given.next_step,
    )
