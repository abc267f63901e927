"""Profile use cases: contact details and their corrections, devices, feedback, and
anonymous interactions. Every read of the subject's data is recorded first: once
processing stopped (cancellation, erasure) that refuses, before anything is read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity_notifications import NotificationPreferencesSet
from expensura_events.catalog.identity_profile import DeviceRegistered, FeedbackReceived
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.cipher import LOOKUP_HMAC
from expensura_events.contacts import Contact, contact_categories, current_contact
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.obligations import enforces
from expensura_events.registry import personal_categories
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, CollectionChannel, LegalGround, Purpose
from expensura_identity.accounts import store as accounts_store
from expensura_identity.accounts.domain import account_stream, email_lookup
from expensura_identity.profile import store
from expensura_identity.profile.domain import (
    anonymise,
    check_device,
    correction,
    device_stream,
    feedback_stream,
    notification_preferences,
)

CONTRACT = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="account")
DEVICE_FIELDS = ("model", "os_version", "app_version", "idfa")


def _user(subject_id: str) -> Actor:
    return Actor(kind=ActorKind.USER, id=subject_id)


async def _contact(rt: ServiceRuntime, conn: AsyncConnection, subject_id: str) -> Contact:
    return current_contact(await rt.store.read_subject(conn, subject_id))


async def my_contact(rt: ServiceRuntime, subject_id: str) -> Contact:
    """The subject's contact details, each with how and when it was collected (COL-4)."""
    async with rt.engine.begin() as conn:
        await rt.record_access(
            conn,
            subject_id=subject_id,
            actor=_user(subject_id),
            purpose=Purpose.ACCOUNT_MANAGEMENT,
            fields=["email", "phone"],
            categories=contact_categories(),
        )
        return await _contact(rt, conn, subject_id)


async def correct_contact(
    rt: ServiceRuntime, subject_id: str, email: str | None, phone: str | None
) -> Contact:
    """RGT-2: a correction event every service follows; sign-in follows a new e-mail.
    Raises InvalidAccountDetails, EmailTaken."""
    event = correction(email, phone)
    async with rt.engine.begin() as conn:
        if email is not None:
            await accounts_store.set_email_lookup(
                conn, UUID(subject_id), email_lookup(await rt.secrets.get(LOOKUP_HMAC), email)
            )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=account_stream(subject_id),
                    subject_id=subject_id,
                    actor=_user(subject_id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=CONTRACT,
                )
            ],
        )
        return await _contact(rt, conn, subject_id)


@enforces("USE-10")
async def choose_notification_channels(
    rt: ServiceRuntime,
    subject_id: str,
    channels: list[NoticeChannel],
    push_token: str | None,
    mailing_address: str | None,
    language: str | None = None,
) -> NotificationPreferencesSet:
    """The channels notices reach the customer on, in their order, and the language notices
    are written in: an event the incident service's contact copy follows. Raises
    InvalidAccountDetails."""
    async with rt.engine.begin() as conn:
        contact = await _contact(rt, conn, subject_id)
        event = notification_preferences(
            channels,
            push_token,
            mailing_address,
            phone_on_file=contact.phone is not None,
            language=language,
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=account_stream(subject_id),
                    subject_id=subject_id,
                    actor=_user(subject_id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=CONTRACT,
                )
            ],
        )
    return event


@dataclass(frozen=True)
class NewDevice:
    model: str
    os_version: str
    app_version: str
    tracking_allowed: bool
    idfa: str | None


@dataclass(frozen=True)
class Device:
    device_id: UUID
    model: str
    os_version: str
    app_version: str
    idfa: str | None
    channel: str


async def register_device(rt: ServiceRuntime, subject_id: str, new: NewDevice) -> Device:
    """COL-1: device and app information; the IDFA only with tracking permission. Raises
    TrackingNotAllowed (nothing kept)."""
    check_device(new.tracking_allowed, new.idfa)
    device_id = uuid4()
    channel = CollectionChannel.ACTIVELY_COLLECTED
    async with rt.engine.begin() as conn:
        await store.insert_device(
            conn, device_id, subject_id, new.tracking_allowed, channel.value, utcnow()
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    DeviceRegistered(
                        device_id=device_id,
                        model=new.model,
                        os_version=new.os_version,
                        app_version=new.app_version,
                        tracking_allowed=new.tracking_allowed,
                        idfa=new.idfa,
                        channel=channel,
                    ),
                    stream_id=device_stream(device_id),
                    subject_id=subject_id,
                    actor=_user(subject_id),
                    purpose=Purpose.SECURITY,
                    legal_basis=CONTRACT,
                )
            ],
        )
    return Device(device_id, new.model, new.os_version, new.app_version, new.idfa, channel.value)


async def my_devices(rt: ServiceRuntime, subject_id: str) -> list[Device]:
    async with rt.engine.begin() as conn:
        events = await rt.store.read_subject(conn, subject_id)
        await rt.record_access(
            conn,
            subject_id=subject_id,
            actor=_user(subject_id),
            purpose=Purpose.ACCOUNT_MANAGEMENT,
            fields=list(DEVICE_FIELDS),
            categories=personal_categories(DeviceRegistered, DEVICE_FIELDS),
        )
    return [
        Device(
            e.payload.device_id,
            e.payload.model,
            e.payload.os_version,
            e.payload.app_version,
            e.payload.idfa,
            CollectionChannel(e.payload.channel).value,  # a plain str once redacted
        )
        for e in events
        if isinstance(e.payload, DeviceRegistered)
    ]


async def record_interactions(rt: ServiceRuntime, batch: Sequence[dict[str, Any]]) -> int:
    """COL-3: identifiers dropped and times rounded to the hour before anything is stored."""
    rows = [
        anonymise(i) | {"id": uuid4(), "channel": CollectionChannel.ACTIVELY_COLLECTED.value}
        for i in batch
    ]
    if rows:
        async with rt.engine.begin() as conn:
            await store.insert_interactions(conn, rows)
    return len(rows)


@dataclass(frozen=True)
class Feedback:
    feedback_id: UUID
    message: str
    may_contact: bool
    received_at: datetime


@enforces("USE-9")
async def give_feedback(
    rt: ServiceRuntime, subject_id: str, message: str, may_contact: bool
) -> Feedback:
    """USE-9: feedback kept as a record; `may_contact` says whether we may write back."""
    feedback_id, now = uuid4(), utcnow()
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    FeedbackReceived(
                        feedback_id=feedback_id,
                        message=message,
                        may_contact=may_contact,
                        channel=CollectionChannel.PROVIDED_BY_USER,
                    ),
                    stream_id=feedback_stream(feedback_id),
                    subject_id=subject_id,
                    actor=_user(subject_id),
                    purpose=Purpose.FEEDBACK_AND_DIAGNOSTICS,
                    legal_basis=CONTRACT,
                )
            ],
        )
    return Feedback(feedback_id, message, may_contact, now)


async def my_feedback(rt: ServiceRuntime, subject_id: str) -> list[Feedback]:
    async with rt.engine.begin() as conn:
        events = await rt.store.read_subject(conn, subject_id)
        await rt.record_access(
            conn,
            subject_id=subject_id,
            actor=_user(subject_id),
            purpose=Purpose.FEEDBACK_AND_DIAGNOSTICS,
            fields=["message"],
            categories=personal_categories(FeedbackReceived, ["message"]),
        )
    return [
        Feedback(e.payload.feedback_id, e.payload.message, e.payload.may_contact, e.occurred_at)
        for e in events
        if isinstance(e.payload, FeedbackReceived)
    ]
