"""Events of the identity service."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import CollectionChannel, DataCategory, Grade

Email = Annotated[str, PersonalData(DataCategory.CONTACT, Grade.SENSITIVE), Field(max_length=254)]
Phone = Annotated[str, PersonalData(DataCategory.CONTACT, Grade.SENSITIVE), Field(max_length=20)]


@event_type("identity.AccountOpened", source="identity")
class AccountOpened(DomainEvent):
    account_id: UUID
    email: Email
    phone: Phone | None = None
    channel: CollectionChannel
