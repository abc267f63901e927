"""An operator's check that notices would reach the right address, without showing it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from pydantic import BaseModel

from expensura_events.fields import Identifier
from expensura_events.web.auth import Runtime, callers
from expensura_events.web.problems import Problem
from expensura_incident.contacts import service
from expensura_incident.contacts.domain import UnknownSubject

# An operator's check, made with incident's own credentials (its command line, its pods).
router = APIRouter(
    prefix="/internal/notification-contacts", tags=["internal"], dependencies=[callers("incident")]
)


class ContactCheck(BaseModel):
    subject_id: str
    email_sha256: str | None  # compare with a known address; the address is not shown
    phone_present: bool
    updated_from_event: UUID
    updated_at: datetime


class Unknown(Problem):
    status, title = 404, "No contact details for this subject"


@router.get("/{subject_id}")
async def contact_check(subject_id: Annotated[Identifier, Path()], rt: Runtime) -> ContactCheck:
    try:
        found = await service.contact_check(rt, subject_id)
    except UnknownSubject:
        raise Unknown(subject_id) from None
    return ContactCheck(
        subject_id=found.subject_id,
        email_sha256=found.email_sha256,
        phone_present=found.phone_present,
        updated_from_event=found.updated_from_event,
        updated_at=found.updated_at,
    )
