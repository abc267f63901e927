"""The user's profile: contact details and corrections, devices, feedback; anonymous
interactions from the app."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from expensura_events.catalog.identity_profile import (
    ContactDetailsCorrected,
    DeviceRegistered,
    FeedbackReceived,
)
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.fields import EmailAddress, Instant, PhoneNumber, ShortText, SingleLine
from expensura_events.vocabulary import ActorKind, CollectionChannel, LegalGround, Purpose
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.accounts.domain import (
    InvalidAccountDetails,
    checked_contact,
    current_contact,
)
from expensura_identity.accounts.lookup import email_lookup
from expensura_identity.accounts.tables import accounts
from expensura_identity.profile.domain import TrackingNotAllowed, anonymise, check_device
from expensura_identity.profile.tables import devices, interaction_events

router = APIRouter(tags=["profile"])
CONTRACT = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="account")


class Item(BaseModel):
    value: Any
    channel: str
    collected_at: datetime


class Profile(BaseModel):
    account_id: str
    email: Item | None
    phone: Item | None


class Correction(BaseModel):
    email: EmailAddress | None = None
    phone: PhoneNumber | None = None


class DeviceIn(BaseModel):
    model: Annotated[SingleLine, Field(max_length=100)]
    os_version: Annotated[SingleLine, Field(max_length=100)]
    app_version: Annotated[SingleLine, Field(max_length=100)]
    tracking_allowed: bool
    idfa: Annotated[str | None, Field(pattern=r"^[0-9A-Fa-f-]{36}$")] = None


class DeviceOut(BaseModel):
    device_id: UUID
    model: str
    os_version: str
    app_version: str
    idfa: str | None
    channel: str


class Interaction(BaseModel):
    type: Literal["click", "page_view"]
    screen: Annotated[str, Field(pattern=r"^[a-z0-9_./-]{1,100}$")]
    element: Annotated[str | None, Field(pattern=r"^[a-z0-9_./-]{1,100}$")] = None
    occurred_at: Instant
    model_config = {"extra": "allow"}  # whatever identifiers the app adds are dropped


class Accepted(BaseModel):
    accepted: int


class FeedbackIn(BaseModel):
    message: Annotated[ShortText, Field(max_length=5000)]
    may_contact: bool = False


class FeedbackOut(BaseModel):
    feedback_id: UUID
    message: str
    may_contact: bool
    received_at: datetime


class InvalidDetails(Problem):
    status, title = 422, "Invalid details"


class EmailTaken(Problem):
    status, title = 409, "An account with this e-mail exists"


def _user(caller_id: str) -> Actor:
    return Actor(kind=ActorKind.USER, id=caller_id)


async def _profile(rt: Runtime, conn: Any, subject: str) -> Profile:
    found = current_contact(await rt.store.read_subject(conn, subject))
    items = {
        name: Item(value=c.value, channel=c.channel.value, collected_at=c.collected_at)
        for name, c in found.items()
    }
    return Profile(account_id=subject, email=items.get("email"), phone=items.get("phone"))


@router.get("/v1/me", responses={409: {}})
async def my_profile(caller: CurrentUser, rt: Runtime) -> Profile:
    """Your contact details, each with how and when we collected it (COL-4)."""
    async with rt.engine.begin() as conn:
        # Recorded first: once processing stopped (cancellation, erasure) this refuses with
        # 409 before anything is read, as every other read of the subject's data does.
        await rt.record_access(
            conn,
            subject_id=caller.id,
            actor=_user(caller.id),
            purpose=Purpose.ACCOUNT_MANAGEMENT,
            fields=["email", "phone"],
            categories=["pd:Contact"],
        )
        return await _profile(rt, conn, caller.id)


@router.patch("/v1/me/contact-details", responses={409: {}, 422: {}})
async def correct(body: Correction, caller: CurrentUser, rt: Runtime) -> Profile:
    """Correct your e-mail or phone (RGT-2): a correction event every service follows."""
    if body.email is None and body.phone is None:
        raise InvalidDetails("send an email or a phone")
    try:
        email, phone = checked_contact(body.email, body.phone)
    except InvalidAccountDetails as exc:
        raise InvalidDetails(str(exc)) from None
    event = ContactDetailsCorrected(
        email=email,
        phone=phone,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )
    try:
        async with rt.engine.begin() as conn:
            if body.email is not None:
                await conn.execute(
                    update(accounts)
                    .where(accounts.c.account_id == UUID(caller.id))
                    .values(email_lookup=email_lookup(rt.settings.master_key, body.email))
                )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        event,
                        stream_id=f"account-{caller.id}",
                        subject_id=caller.id,
                        actor=_user(caller.id),
                        purpose=Purpose.ACCOUNT_MANAGEMENT,
                        legal_basis=CONTRACT,
                    )
                ],
            )
            return await _profile(rt, conn, caller.id)
    except IntegrityError:
        raise EmailTaken("Use another address.") from None


@router.post("/v1/me/devices", status_code=201, responses={422: {}})
async def register_device(body: DeviceIn, caller: CurrentUser, rt: Runtime) -> DeviceOut:
    try:
        check_device(body.tracking_allowed, body.idfa)
    except TrackingNotAllowed as exc:
        raise InvalidDetails(str(exc)) from None
    device_id = uuid4()
    channel = CollectionChannel.ACTIVELY_COLLECTED
    async with rt.engine.begin() as conn:
        await conn.execute(
            devices.insert().values(
                device_id=device_id,
                subject_id=caller.id,
                tracking_allowed=body.tracking_allowed,
                channel=channel.value,
                registered_at=utcnow(),
            )
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    DeviceRegistered(
                        device_id=device_id,
                        model=body.model,
                        os_version=body.os_version,
                        app_version=body.app_version,
                        tracking_allowed=body.tracking_allowed,
                        idfa=body.idfa,
                        channel=channel,
                    ),
                    stream_id=f"device-{device_id}",
                    subject_id=caller.id,
                    actor=_user(caller.id),
                    purpose=Purpose.SECURITY,
                    legal_basis=CONTRACT,
                )
            ],
        )
    return DeviceOut(
        device_id=device_id,
        model=body.model,
        os_version=body.os_version,
        app_version=body.app_version,
        idfa=body.idfa,
        channel=channel.value,
    )


@router.get("/v1/me/devices")
async def my_devices(caller: CurrentUser, rt: Runtime) -> list[DeviceOut]:
    async with rt.engine.begin() as conn:
        events = await rt.store.read_subject(conn, caller.id)
        await rt.record_access(
            conn,
            subject_id=caller.id,
            actor=_user(caller.id),
            purpose=Purpose.ACCOUNT_MANAGEMENT,
            fields=["model", "os_version", "app_version", "idfa"],
            categories=["pd:DeviceBased"],
        )
    return [
        DeviceOut(
            device_id=e.payload.device_id,
            model=e.payload.model,
            os_version=e.payload.os_version,
            app_version=e.payload.app_version,
            idfa=e.payload.idfa,
            channel=CollectionChannel(e.payload.channel).value,  # a plain str once redacted
        )
        for e in events
        if isinstance(e.payload, DeviceRegistered)
    ]


@router.post("/v1/interactions", status_code=202)
async def interactions(
    batch: Annotated[list[Interaction], Field(max_length=200)], rt: Runtime
) -> Accepted:
    """Anonymous clicks and page views (COL-3): identifiers are dropped and times rounded to
    the hour before anything is stored."""
    rows = [
        anonymise(i.model_dump())
        | {"id": uuid4(), "channel": CollectionChannel.ACTIVELY_COLLECTED.value}
        for i in batch
    ]
    if rows:
        async with rt.engine.begin() as conn:
            await conn.execute(interaction_events.insert(), rows)
    return Accepted(accepted=len(rows))


@router.post("/v1/me/feedback", status_code=201)
async def give_feedback(body: FeedbackIn, caller: CurrentUser, rt: Runtime) -> FeedbackOut:
    """Feedback and diagnostics (USE-9), kept as a record; we write back only if allowed."""
    feedback_id, now = uuid4(), utcnow()
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    FeedbackReceived(
                        feedback_id=feedback_id,
                        message=body.message,
                        may_contact=body.may_contact,
                        channel=CollectionChannel.PROVIDED_BY_USER,
                    ),
                    stream_id=f"feedback-{feedback_id}",
                    subject_id=caller.id,
                    actor=_user(caller.id),
                    purpose=Purpose.FEEDBACK_AND_DIAGNOSTICS,
                    legal_basis=CONTRACT,
                )
            ],
        )
    return FeedbackOut(
        feedback_id=feedback_id, message=body.message, may_contact=body.may_contact, received_at=now
    )


@router.get("/v1/me/feedback")
async def my_feedback(caller: CurrentUser, rt: Runtime) -> list[FeedbackOut]:
    async with rt.engine.begin() as conn:
        events = await rt.store.read_subject(conn, caller.id)
        await rt.record_access(
            conn,
            subject_id=caller.id,
            actor=_user(caller.id),
            purpose=Purpose.FEEDBACK_AND_DIAGNOSTICS,
            fields=["message"],
            categories=["pd:Contact"],
        )
    return [
        FeedbackOut(
            feedback_id=e.payload.feedback_id,
            message=e.payload.message,
            may_contact=e.payload.may_contact,
            received_at=e.occurred_at,
        )
        for e in events
        if isinstance(e.payload, FeedbackReceived)
    ]
