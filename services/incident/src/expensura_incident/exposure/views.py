"""The blast radius over HTTP, for the response team only (staff with MFA, role security
officer or privacy officer, SEC-2): the counts always; the subject list only when asked,
each subject handed back recorded as a read."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StringConstraints

from expensura_events.auth import Principal
from expensura_events.catalog.incident_exposure import ScopeKind
from expensura_events.fields import Identifier, Instant
from expensura_events.outbound import http_client
from expensura_events.vocabulary import StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import NotFound, Problem
from expensura_incident.exposure.domain import BadScope, Scope
from expensura_incident.exposure.service import chain_feeds, compute
from expensura_incident.response.service import UnknownIncident, require_incident

router = APIRouter(tags=["blast radius"])

RESPONSE_TEAM = (StaffRole.SECURITY_OFFICER.value, StaffRole.PRIVACY_OFFICER.value)
Responder = Annotated[Principal, Depends(staff_with(*RESPONSE_TEAM))]


# A key owner: a subject, or a subject's key for a retention hold ("<subject>#hold:<hold>").
KeyOwner = Annotated[
    str,
    StringConstraints(min_length=1, max_length=300, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@+#-]*$"),
]


class ScopeIn(BaseModel):
    kind: ScopeKind
    value: Identifier = Field(description="the partner, credential, staff member, service …")


class WindowIn(BaseModel):
    start: Instant
    end: Instant


class BlastRadiusIn(BaseModel):
    incident_id: UUID
    scope: ScopeIn
    window: WindowIn
    compromised_key_owners: list[KeyOwner] = Field(default_factory=list, max_length=10000)
    include_subjects: bool = Field(
        default=False, description="hand back the subjects too (each recorded as a read)"
    )


class ChainOut(BaseModel):
    source: str
    verified_to: int | None
    problem: str | None


class SubjectOut(BaseModel):
    subject_id: str
    protection: str


class BlastRadiusOut(BaseModel):
    computation_id: UUID
    incident_id: UUID
    subjects: int
    notifiable_subjects: int
    by_protection: dict[str, int]
    categories: dict[str, int]
    fields: dict[str, int]
    first_at: str | None
    last_at: str | None
    chains: list[ChainOut]
    subject_list: list[SubjectOut] | None = None


class BadScopeProblem(Problem):
    status, title = 422, "Bad scope"


@router.post("/v1/blast-radius", responses={403: {}, 404: {}, 422: {}})
async def blast_radius(body: BlastRadiusIn, responder: Responder, rt: Runtime) -> BlastRadiusOut:
    """Which subjects the scope's accesses and disclosures exposed over the window, which
    categories and fields, under which protection; recorded as `incident.BlastRadiusComputed`."""
    try:
        scope = Scope(
            kind=body.scope.kind,
            value=body.scope.value,
            start=body.window.start,
            end=body.window.end,
            compromised_key_owners=frozenset(body.compromised_key_owners),
        )
    except BadScope as exc:
        raise BadScopeProblem(str(exc)) from None
    try:
        await require_incident(rt, body.incident_id)
    except UnknownIncident:
        raise NotFound("No incident with that id; nothing was computed.") from None
    role = next((r for r in RESPONSE_TEAM if r in responder.roles), None)
    async with http_client(timeout=30) as client:
        done = await compute(
            rt,
            incident_id=body.incident_id,
            scope=scope,
            staff_id=responder.id,
            role=role,
            feeds=chain_feeds(rt, client, [*rt.settings.service_urls, rt.name]),
            disclose_subjects=body.include_subjects,
        )
    radius = done.radius
    return BlastRadiusOut(
        computation_id=done.computation_id,
        incident_id=body.incident_id,
        subjects=len(radius.subjects),
        notifiable_subjects=len(radius.notifiable),
        by_protection=radius.by_protection(),
        categories=dict(radius.categories),
        fields=dict(radius.fields),
        first_at=None if radius.first_at is None else radius.first_at.isoformat(),
        last_at=None if radius.last_at is None else radius.last_at.isoformat(),
        chains=[
            ChainOut(source=c.source, verified_to=c.head, problem=c.problem) for c in done.chains
        ],
        subject_list=[
            SubjectOut(subject_id=s, protection=p.value)
            for s, p in sorted(radius.protection.items())
        ]
        if body.include_subjects
        else None,
    )
