"""Events of the identity service."""

from __future__ import annotations

from datetime import datetime
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


@event_type("identity.EmailOwnershipProofRequested", source="identity")
class EmailOwnershipProofRequested(DomainEvent):
    """A one-time code was mailed to the account's e-mail. The code itself is never in the
    log (identity keeps only its keyed hash, until it is used or expires)."""

    expires_at: datetime


@event_type("identity.EmailOwnershipProven", source="identity")
class EmailOwnershipProven(DomainEvent):
    """The account holder showed they receive mail at the account's e-mail: they presented
    the one-time code mailed there. Loans serves only accounts with this proof."""

    method: str = Field(max_length=50)  # "one-time-code"


@event_type("identity.EmailOwnershipProofRefused", source="identity")
class EmailOwnershipProofRefused(DomainEvent):
    """A code was refused (wrong, expired, already used, too many attempts): guessing shows."""

    reason: str = Field(max_length=100)


@event_type("identity.SignUpWithTakenEmail", source="identity")
class SignUpWithTakenEmail(DomainEvent):
    """Someone signed up with this account's e-mail. Nothing was created; the owner was
    mailed a notice, and the caller got the answer every sign-up gets."""


@event_type("identity.SignedIn", source="identity")
class SignedIn(DomainEvent):
    """A principal (app user or staff) proved who they are and got a session."""

    principal_kind: str
    session_id: UUID
    methods: list[str]


@event_type("identity.SignInRefused", source="identity")
class SignInRefused(DomainEvent):
    """A sign-in to a known account failed (wrong secret, throttled, locked)."""

    reason: str = Field(max_length=100)


@event_type("identity.RefreshTokenReuseDetected", source="identity")
class RefreshTokenReuseDetected(DomainEvent):
    """A rotated-out refresh token came back: the session family was revoked."""

    session_id: UUID


@event_type("identity.SessionRefreshRefused", source="identity")
class SessionRefreshRefused(DomainEvent):
    """A known refresh token was refused: revoked, expired, past its session's absolute cap,
    or its principal may no longer sign in (closed, locked, disabled). A leaked token
    presented after any of these shows here."""

    session_id: UUID
    principal_kind: str = Field(max_length=20)
    reason: str = Field(max_length=100)


@event_type("identity.SignedOut", source="identity")
class SignedOut(DomainEvent):
    session_id: UUID


@event_type("identity.DataReleaseRefused", source="identity")
class DataReleaseRefused(DomainEvent):
    """Identity released no values: the caller was not the sharing gateway, or consent
    refused the grant (unknown, already used, expired, for another subject or recipient,
    wider than decided, or no longer allowed). What was asked, never a value."""

    decision_id: str | None = Field(default=None, max_length=100)
    recipient: str | None = Field(default=None, max_length=200)
    fields: Annotated[list[str], Field(max_length=10)] = []
    caller: str | None = Field(default=None, max_length=100)  # the verified service, if any
    reason: str = Field(max_length=300)


@event_type("identity.SigningKeyRetired", source="identity")
class SigningKeyRetired(DomainEvent):
    """An access-token signing key is distrusted (SEC-4: rotated as an incident's
    containment, the request's event id as causation): it signs nothing more and is no
    longer published, so every token it signed is refused; the next token is signed by a new
    key. `already_retired`: an earlier request retired it (the outcome is this request's
    all the same). A key id, nothing personal."""

    kid: str = Field(max_length=100)
    incident_id: UUID | None = None
    already_retired: bool = False
