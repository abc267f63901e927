"""Operator view of the subject index (no personal data: ids and dates only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from expensura_consent.subjects import service
from expensura_consent.subjects.domain import SubjectNotKnown
from expensura_events.fields import Identifier
from expensura_events.web.auth import EVERY_SERVICE, Runtime, callers
from expensura_events.web.problems import Problem

# Internal: an operator's and the other services' view (ids and dates only); the API gateway
# does not route /internal to the internet.
router = APIRouter(
    prefix="/internal/known-subjects",
    tags=["internal"],
    dependencies=[callers(*EVERY_SERVICE)],  # an operator runs with any service's credentials
)


class KnownSubject(BaseModel):
    subject_id: str
    account_opened_at: datetime | None
    identity_events: int


class SubjectCount(BaseModel):
    subjects: int


class SubjectNotKnownProblem(Problem):
    status, title = 404, "Unknown data subject"


@router.get("/count")
async def count_subjects(rt: Runtime) -> SubjectCount:
    return SubjectCount(subjects=await service.count(rt))


@router.get("/{subject_id}", responses={404: {}})
async def get_subject(subject_id: Annotated[Identifier, Path()], rt: Runtime) -> KnownSubject:
    try:
        found = await service.get(rt, subject_id)
    except SubjectNotKnown:
        raise SubjectNotKnownProblem(f"no subject {subject_id} has been seen yet") from None
    return KnownSubject(
        subject_id=found.subject_id,
        account_opened_at=found.account_opened_at,
        identity_events=found.identity_events,
    )
