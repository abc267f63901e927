"""Breach notices over HTTP: a security or privacy officer (staff with MFA, SEC-2) plans an
incident's notices and reads their delivery counts; anyone reads the public notices (no
personal data in them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from expensura_events.auth import Principal
from expensura_events.envelope import Actor
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import NotFound, Problem
from expensura_incident.breach import domain
from expensura_incident.breach.service import (
    BreachSubject,
    breach_notice_channels,
    breach_notice_counts,
    public_notices,
    send_breach_notices,
    send_breach_notices_from_radius,
)
from expensura_incident.exposure.service import UnknownBlastRadius
from expensura_incident.response.service import UnknownIncident, require_incident

router = APIRouter(tags=["breach notices"])

ROLES = (StaffRole.SECURITY_OFFICER.value, StaffRole.PRIVACY_OFFICER.value)
Officer = Annotated[Principal, Depends(staff_with(*ROLES))]

Part = Annotated[str, Field(min_length=1, max_length=domain.MAX_PART)]


class PartsIn(BaseModel):
    situation: Part
    impacts: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=50, description="the kinds of data exposed"
    )
    measures: Part
    advice: Part
    remedies: Part = Field(description="whom to contact; free credit report and freeze")


class SubjectIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=100)
    language: str | None = Field(default=None, max_length=35)


class BreachNoticesIn(BaseModel):
    content: PartsIn = Field(description="the notice in English")
    translations: dict[str, PartsIn] = Field(
        default_factory=dict, max_length=10, description="by language: es, …"
    )
    subjects: list[SubjectIn] | None = Field(
        default=None, min_length=1, max_length=10_000, description="or `blast_radius_id`"
    )
    blast_radius_id: UUID | None = Field(
        default=None,
        description="a stored blast radius of this incident: notify its notifiable subjects, "
        "each in the language of their notification preferences (English without one)",
    )

    @model_validator(mode="after")
    def _one_source_of_subjects(self) -> BreachNoticesIn:
        if (self.subjects is None) == (self.blast_radius_id is None):
            raise ValueError("give either subjects or blast_radius_id")
        return self


class PublicNoticeOut(BaseModel):
    needed: bool
    substitute: bool
    reasons: list[str]


class BreachRunOut(BaseModel):
    incident_id: UUID
    planned: int
    already: int
    unreachable: int
    public_notice: PublicNoticeOut


class CountsOut(BaseModel):
    incident_id: UUID
    total: int
    states: dict[str, int]
    channels: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="by current (or last) channel, then state"
    )
    fallbacks: dict[str, int] = Field(
        default_factory=dict, description="per channel: on it because an earlier one gave up"
    )


class PublicNoticeItem(BaseModel):
    incident_id: UUID
    public_notice_id: UUID
    title: str
    body: str
    reasons: list[str]
    subjects: int
    source: str
    published_at: datetime


class PublicNoticesOut(BaseModel):
    notices: list[PublicNoticeItem]


class IncompleteProblem(Problem):
    status, title = 422, "Incomplete breach notice"


class UnknownBlastRadiusProblem(Problem):
    status, title = 404, "No such blast radius for this incident"


def _parts(body: PartsIn) -> domain.BreachParts:
    return domain.BreachParts(
        situation=body.situation,
        impacts=tuple(body.impacts),
        measures=body.measures,
        advice=body.advice,
        remedies=body.remedies,
    )


async def _known(rt: ServiceRuntime, incident_id: UUID) -> None:
    """404 for an incident that was never reported, before anything is planned or read."""
    try:
        await require_incident(rt, incident_id)
    except UnknownIncident:
        raise NotFound("No incident with that id; nothing was changed.") from None


def _actor(officer: Principal) -> Actor:
    role = next(r for r in ROLES if r in officer.roles)
    return Actor(kind=ActorKind.STAFF, id=officer.id, role=role)


@router.post(
    "/v1/incidents/{incident_id}/breach-notices",
    status_code=202,
    responses={403: {}, 404: {}, 422: {}},
)
async def plan_breach_notices(
    incident_id: UUID, body: BreachNoticesIn, officer: Officer, rt: Runtime
) -> BreachRunOut:
    """Plan one notice per subject (once: a repeated request plans none again); the notice
    sender delivers them. Subjects no channel reaches are covered by the public notice. The
    subjects: listed, or a stored blast radius's notifiable ones (`blast_radius_id`)."""
    await _known(rt, incident_id)
    texts = {"en": _parts(body.content)} | {
        lang.lower(): _parts(p) for lang, p in body.translations.items()
    }
    try:
        content = domain.BreachContent.of(texts)
    except domain.IncompleteBreachNotice as exc:
        raise IncompleteProblem(str(exc)) from None
    if body.blast_radius_id is not None:
        try:
            run = await send_breach_notices_from_radius(
                rt, incident_id, body.blast_radius_id, content, actor=_actor(officer)
            )
        except UnknownBlastRadius:
            raise UnknownBlastRadiusProblem(str(body.blast_radius_id)) from None
    else:
        run = await send_breach_notices(
            rt,
            incident_id,
            [BreachSubject(s.subject_id, s.language) for s in body.subjects or ()],
            content,
            actor=_actor(officer),
        )
    return BreachRunOut(
        incident_id=incident_id,
        planned=run.planned,
        already=run.already,
        unreachable=run.unreachable,
        public_notice=PublicNoticeOut(
            needed=run.public_notice.needed,
            substitute=run.public_notice.substitute,
            reasons=list(run.public_notice.reasons),
        ),
    )


@router.get("/v1/incidents/{incident_id}/breach-notices", responses={403: {}, 404: {}})
async def breach_notice_states(incident_id: UUID, officer: Officer, rt: Runtime) -> CountsOut:
    """How many of the incident's notices are in each delivery state (DPV's: planned,
    ongoing, completed, failed, not-needed; `erased`: the subject was erased since)."""
    await _known(rt, incident_id)
    states = dict(await breach_notice_counts(rt, incident_id))
    channels, fallbacks = await breach_notice_channels(rt, incident_id)
    return CountsOut(
        incident_id=incident_id,
        total=sum(states.values()),
        states=states,
        channels=channels,
        fallbacks=fallbacks,
    )


@router.get("/v1/public-notices")
async def published_public_notices(rt: Runtime) -> PublicNoticesOut:
    """The published public notices (no authentication: they are for everyone)."""
    rows = await public_notices(rt)
    return PublicNoticesOut(notices=[PublicNoticeItem.model_validate(r) for r in rows])
