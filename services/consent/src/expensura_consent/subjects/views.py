"""Operator view of the subject index (no personal data: ids and dates only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlalchemy import func, select

from expensura_consent.subjects.projection import known_subjects
from expensura_events.fields import Identifier
from expensura_events.web.auth import Runtime
from expensura_events.web.problems import Problem

# Internal: an operator's and the other services' view (ids and dates only); the API gateway
# does not route /internal to the internet.
router = APIRouter(prefix="/internal/known-subjects", tags=["internal"])


class KnownSubject(BaseModel):
    subject_id: str
    account_opened_at: datetime | None
    identity_events: int


class SubjectCount(BaseModel):
    subjects: int


class SubjectNotKnown(Problem):
    status, title = 404, "Unknown data subject"


@router.get("/count")
async def count_subjects(rt: Runtime) -> SubjectCount:
    async with rt.engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(known_subjects))).scalar_one()
    return SubjectCount(subjects=n)


@router.get("/{subject_id}", responses={404: {}})
async def get_subject(subject_id: Annotated[Identifier, Path()], rt: Runtime) -> KnownSubject:
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(known_subjects).where(known_subjects.c.subject_id == subject_id)
            )
        ).one_or_none()
    if row is None:
        raise SubjectNotKnown(f"no subject {subject_id} has been seen yet")
    return KnownSubject(
        subject_id=row.subject_id,
        account_opened_at=row.account_opened_at,
        identity_events=row.identity_events,
    )
