"""An operator's checks that notices would reach the right address, without showing it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from pydantic import BaseModel

from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.fields import EmailAddress, Identifier
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
    # A keyed digest (HMAC-SHA256 under incident's key): it tells whether the address
    # changed; only incident can compare it with an address (POST …/email-check).
    email_hmac: str | None
    phone_present: bool
    # The channel order the customer chose for notices (null: none, the default order
    # e-mail, push, SMS, letter applies), and whether push and letter have their address.
    notice_channels: list[NoticeChannel] | None
    push_token_present: bool
    mailing_address_present: bool
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
        email_hmac=found.email_hmac,
        phone_present=found.phone_present,
        notice_channels=None if found.notice_channels is None else list(found.notice_channels),
        push_token_present=found.push_token_present,
        mailing_address_present=found.mailing_address_present,
        updated_from_event=found.updated_from_event,
        updated_at=found.updated_at,
    )


class EmailCheck(BaseModel):
    email: EmailAddress  # in the body: a query string would carry the address into logs and spans


class EmailCheckResult(BaseModel):
    matches: bool


@router.post("/{subject_id}/email-check")
async def email_check(
    subject_id: Annotated[Identifier, Path()], body: EmailCheck, rt: Runtime
) -> EmailCheckResult:
    """Whether notices to this subject would go to this address."""
    try:
        matches = await service.email_check(rt, subject_id, body.email)
    except UnknownSubject:
        raise Unknown(subject_id) from None
    return EmailCheckResult(matches=matches)
