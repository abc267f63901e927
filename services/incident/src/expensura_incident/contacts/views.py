"""An operator's check that notices would reach the right address, without showing it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlalchemy import select

from expensura_events.fields import Identifier
from expensura_events.web.auth import Runtime
from expensura_events.web.problems import Problem
from expensura_incident.contacts.projection import notification_contacts

router = APIRouter(prefix="/internal/notification-contacts", tags=["internal"])


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
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(notification_contacts).where(
                    notification_contacts.c.subject_id == subject_id
                )
            )
        ).one_or_none()
    if row is None:
        raise Unknown(subject_id)
    return ContactCheck(
        subject_id=subject_id,
        email_sha256=hashlib.sha256(row.email.encode()).hexdigest() if row.email else None,
        phone_present=row.phone is not None,
        updated_from_event=row.updated_from_event,
        updated_at=row.updated_at,
    )
