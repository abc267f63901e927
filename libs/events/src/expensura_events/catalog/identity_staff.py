"""Events of staff access (SEC-2, SEC-3, USE-4). A staff member is the subject of their own
account events; their e-mail is personal data like anyone's."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import DataCategory, Grade, Purpose, StaffRole

StaffEmail = Annotated[
    str, PersonalData(DataCategory.CONTACT, Grade.SENSITIVE), Field(max_length=254)
]


@event_type("identity.StaffMemberCreated", source="identity")
class StaffMemberCreated(DomainEvent):
    staff_id: str = Field(max_length=100)
    email: StaffEmail
    roles: list[StaffRole]


@event_type("identity.StaffTotpEnrolled", source="identity")
class StaffTotpEnrolled(DomainEvent):
    staff_id: str = Field(max_length=100)
    recovery_codes_issued: int


@event_type("identity.StaffRecoveryCodeUsed", source="identity")
class StaffRecoveryCodeUsed(DomainEvent):
    staff_id: str = Field(max_length=100)
    remaining: int


@event_type("identity.StaffLockedOut", source="identity")
class StaffLockedOut(DomainEvent):
    staff_id: str = Field(max_length=100)
    failed_attempts: int


@event_type("identity.StaffUnlocked", source="identity")
class StaffUnlocked(DomainEvent):
    staff_id: str = Field(max_length=100)


@event_type("identity.CustomerIdentityCheckFailed", source="identity")
class CustomerIdentityCheckFailed(DomainEvent):
    """A look-up whose caller could not confirm the customer's details: nothing was shown."""

    case_reference: Annotated[
        str, PersonalData(DataCategory.LEGAL_CASE, Grade.PERSONAL), Field(max_length=200)
    ]
    requested_purpose: Purpose
