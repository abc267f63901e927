"""The user's profile: contact details and corrections, devices, feedback; anonymous
interactions from the app."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from expensura_events.catalog.identity_notifications import NotificationPreferencesSet
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.contacts import Contact, ContactItem
from expensura_events.fields import EmailAddress, Instant, PhoneNumber, ShortText, SingleLine
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.accounts.domain import EmailTaken, InvalidAccountDetails
from expensura_identity.profile import service
from expensura_identity.profile.domain import TrackingNotAllowed

router = APIRouter(tags=["profile"])


class Item(BaseModel):
    value: Any
    channel: str
    collected_at: datetime

    @classmethod
    def of(cls, item: ContactItem | None) -> Item | None:
        if item is None:
            return None
        return cls(value=item.value, channel=item.channel.value, collected_at=item.collected_at)


class Profile(BaseModel):
    account_id: str
    email: Item | None
    phone: Item | None

    @classmethod
    def of(cls, subject_id: str, contact: Contact) -> Profile:
        return cls(
            account_id=subject_id, email=Item.of(contact.email), phone=Item.of(contact.phone)
        )


class Correction(BaseModel):
    email: EmailAddress | None = None
    phone: PhoneNumber | None = None


class NotificationPreferencesIn(BaseModel):
    channels: Annotated[list[NoticeChannel], Field(min_length=1, max_length=4)]
    push_token: Annotated[str | None, Field(max_length=4096)] = None
    mailing_address: Annotated[str | None, Field(max_length=300)] = None
    language: Annotated[str | None, Field(max_length=35)] = Field(
        default=None, description="the language notices are written in (BCP 47: en, es, es-MX)"
    )


class NotificationPreferencesOut(BaseModel):
    """The choice as recorded; the token and address are not echoed, only whether they
    are on file."""

    channels: list[NoticeChannel]
    push_token_on_file: bool
    mailing_address_on_file: bool
    language: str | None = None

    @classmethod
    def of(cls, event: NotificationPreferencesSet) -> NotificationPreferencesOut:
        return cls(
            channels=list(event.channels),
            push_token_on_file=event.push_token is not None,
            mailing_address_on_file=event.mailing_address is not None,
            language=event.language,
        )


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

    @classmethod
    def of(cls, d: service.Device) -> DeviceOut:
        return cls(
            device_id=d.device_id,
            model=d.model,
            os_version=d.os_version,
            app_version=d.app_version,
            idfa=d.idfa,
            channel=d.channel,
        )


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

    @classmethod
    def of(cls, f: service.Feedback) -> FeedbackOut:
        return cls(
            feedback_id=f.feedback_id,
            message=f.message,
            may_contact=f.may_contact,
            received_at=f.received_at,
        )


class InvalidDetails(Problem):
    status, title = 422, "Invalid details"


class EmailTakenProblem(Problem):
    status, title = 409, "An account with this e-mail exists"


@router.get("/v1/me", responses={409: {}})
async def my_profile(caller: CurrentUser, rt: Runtime) -> Profile:
    """Your contact details, each with how and when we collected it (COL-4)."""
    return Profile.of(caller.id, await service.my_contact(rt, caller.id))


@router.patch("/v1/me/contact-details", responses={409: {}, 422: {}})
async def correct(body: Correction, caller: CurrentUser, rt: Runtime) -> Profile:
    """Correct your e-mail or phone (RGT-2): a correction event every service follows."""
    try:
        contact = await service.correct_contact(rt, caller.id, body.email, body.phone)
    except InvalidAccountDetails as exc:
        raise InvalidDetails(str(exc)) from None
    except EmailTaken:
        raise EmailTakenProblem("Use another address.") from None
    return Profile.of(caller.id, contact)


@router.put("/v1/me/notification-preferences", responses={409: {}, 422: {}})
async def choose_notification_channels(
    body: NotificationPreferencesIn, caller: CurrentUser, rt: Runtime
) -> NotificationPreferencesOut:
    """The channels notices reach you on, first choice first (USE-10): e-mail, push (with
    the app's push token), SMS (to your phone on file) or letter (with a U.S. mailing
    address, as three or four lines), and optionally the `language` notices are written in
    (English when none, or when a notice has no text in it). Replaces your earlier choice
    whole."""
    try:
        chosen = await service.choose_notification_channels(
            rt, caller.id, body.channels, body.push_token, body.mailing_address, body.language
        )
    except InvalidAccountDetails as exc:
        raise InvalidDetails(str(exc)) from None
    return NotificationPreferencesOut.of(chosen)


@router.post("/v1/me/devices", status_code=201, responses={422: {}})
async def register_device(body: DeviceIn, caller: CurrentUser, rt: Runtime) -> DeviceOut:
    new = service.NewDevice(
        body.model, body.os_version, body.app_version, body.tracking_allowed, body.idfa
    )
    try:
        return DeviceOut.of(await service.register_device(rt, caller.id, new))
    except TrackingNotAllowed as exc:
        raise InvalidDetails(str(exc)) from None


@router.get("/v1/me/devices")
async def my_devices(caller: CurrentUser, rt: Runtime) -> list[DeviceOut]:
    return [DeviceOut.of(d) for d in await service.my_devices(rt, caller.id)]


@router.post("/v1/interactions", status_code=202)
async def interactions(
    batch: Annotated[list[Interaction], Field(max_length=200)], rt: Runtime
) -> Accepted:
    """Anonymous clicks and page views (COL-3): identifiers are dropped and times rounded to
    the hour before anything is stored."""
    return Accepted(accepted=await service.record_interactions(rt, [i.model_dump() for i in batch]))


@router.post("/v1/me/feedback", status_code=201)
async def give_feedback(body: FeedbackIn, caller: CurrentUser, rt: Runtime) -> FeedbackOut:
    """Feedback and diagnostics (USE-9), kept as a record; we write back only if allowed."""
    return FeedbackOut.of(
        await service.give_feedback(rt, caller.id, body.message, body.may_contact)
    )


@router.get("/v1/me/feedback")
async def my_feedback(caller: CurrentUser, rt: Runtime) -> list[FeedbackOut]:
    return [FeedbackOut.of(f) for f in await service.my_feedback(rt, caller.id)]
