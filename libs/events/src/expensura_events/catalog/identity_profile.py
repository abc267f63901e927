"""Events of the user's profile: corrections (RGT-2), devices (COL-1), feedback (USE-9)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.catalog.identity import Email, Phone
from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import CollectionChannel, DataCategory, Grade

DeviceInfo = Annotated[
    str, PersonalData(DataCategory.DEVICE_BASED, Grade.GENERAL), Field(max_length=100)
]
Idfa = Annotated[str, PersonalData(DataCategory.DEVICE_BASED, Grade.PERSONAL), Field(max_length=64)]
Message = Annotated[str, PersonalData(DataCategory.CONTACT, Grade.PERSONAL), Field(max_length=5000)]


@event_type("identity.ContactDetailsCorrected", source="identity")
class ContactDetailsCorrected(DomainEvent):
    """RGT-2: the user corrected their details; every copy downstream follows this event."""

    email: Email | None = None
    phone: Phone | None = None
    channel: CollectionChannel


@event_type("identity.DeviceRegistered", source="identity")
class DeviceRegistered(DomainEvent):
    """COL-1: device and app information; the IDFA only when the user allowed tracking."""

    device_id: UUID
    model: DeviceInfo
    os_version: DeviceInfo
    app_version: DeviceInfo
    tracking_allowed: bool
    idfa: Idfa | None = None
    channel: CollectionChannel


@event_type("identity.FeedbackReceived", source="identity")
class FeedbackReceived(DomainEvent):
    """USE-9: feedback kept as a record; `may_contact` says whether we may write back."""

    feedback_id: UUID
    message: Message
    may_contact: bool
    channel: CollectionChannel
