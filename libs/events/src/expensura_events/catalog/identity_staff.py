"""Events of staff access (SEC-2, SEC-3, USE-4). A staff member is the subject of their own
account events; their e-mail is personal data like anyone's."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

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


@event_type("identity.StaffSecondFactorRefused", source="identity")
class StaffSecondFactorRefused(DomainEvent):
    """A second step refused: a wrong code, a TOTP code (or an earlier one) already used, or
    a challenge replayed, expired, or presented by another client than the one that proved
    the password. Wrong and reused codes count toward the lock-out."""

    staff_id: str = Field(max_length=100)
    reason: str = Field(max_length=100)


@event_type("identity.StaffSessionsRevoked", source="identity")
class StaffSessionsRevoked(DomainEvent):
    """Every session of a staff member was revoked: locked out, disabled, TOTP reset, or an
    administrator asked for it."""

    staff_id: str = Field(max_length=100)
    reason: str = Field(max_length=100)
    sessions: int
    incident_id: UUID | None = None  # ended as an incident's containment (SEC-4)


@event_type("identity.StaffDisabled", source="identity")
class StaffDisabled(DomainEvent):
    """An administrator disabled the account: no sign-in and no refresh until re-enabled."""

    staff_id: str = Field(max_length=100)


@event_type("identity.StaffReenabled", source="identity")
class StaffReenabled(DomainEvent):
    """An administrator re-enabled a disabled account (with a fresh failure count)."""

    staff_id: str = Field(max_length=100)


@event_type("identity.StaffRolesChanged", source="identity")
class StaffRolesChanged(DomainEvent):
    """An administrator changed the roles; sessions carry the new roles from their next
    refresh."""

    staff_id: str = Field(max_length=100)
    previous_roles: list[StaffRole]
    roles: list[StaffRole]


@event_type("identity.StaffTotpReset", source="identity")
class StaffTotpReset(DomainEvent):
    """An administrator reset the second factor (a lost device): the secret and the
    recovery codes are gone, and the staff member enrols again at their next sign-in."""

    staff_id: str = Field(max_length=100)


@event_type("identity.CustomerIdentityCheckFailed", source="identity")
class CustomerIdentityCheckFailed(DomainEvent):
    """A look-up whose caller could not confirm the customer's details: nothing was shown."""

    case_reference: Annotated[
        str, PersonalData(DataCategory.LEGAL_CASE, Grade.PERSONAL), Field(max_length=200)
    ]
    requested_purpose: Purpose
