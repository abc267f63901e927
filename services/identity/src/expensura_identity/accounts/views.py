"""HTTP routes for accounts."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated
from uuid import UUID, uuid4

from argon2 import PasswordHasher
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from expensura_events.envelope import Actor, EventEnvelope, LegalBasis, new_event_id
from expensura_events.http import Problem, Runtime
from expensura_events.tracing import current_trace_context
from expensura_events.vocabulary import ActorKind, LegalGround, Purpose
from expensura_identity.accounts.domain import (
    InvalidAccountDetails,
    OpenAccount,
    normalise_email,
    open_account,
)
from expensura_identity.accounts.tables import accounts

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
_hasher = PasswordHasher()


class OpenAccountRequest(BaseModel):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    phone: Annotated[str | None, Field(max_length=20)] = None
    password: Annotated[str, Field(min_length=10, max_length=200)]


class AccountCreated(BaseModel):
    account_id: UUID
    status: str


class InvalidDetails(Problem):
    status, title = 422, "Invalid account details"


class EmailTaken(Problem):
    status, title = 409, "An account with this e-mail exists"


def _lookup(master_key: str, email: str) -> bytes:
    return hmac.new(
        hashlib.sha256(b"email-lookup" + master_key.encode()).digest(),
        normalise_email(email).encode(),
        hashlib.sha256,
    ).digest()


@router.post("", status_code=201, responses={409: {}, 422: {}, 503: {}})
async def open_account_route(
    body: OpenAccountRequest, rt: Runtime, request: Request
) -> AccountCreated:
    """Sign up. The account row and its `AccountOpened` event commit together."""
    account_id = uuid4()
    try:
        event = open_account(OpenAccount(account_id, body.email, body.phone))
    except InvalidAccountDetails as exc:
        raise InvalidDetails(str(exc)) from None
    envelope = EventEnvelope(
        event_type=event.event_type,
        schema_version=event.schema_version,
        source=rt.name,
        stream_id=f"account-{account_id}",
        stream_version=0,
        subject_id=str(account_id),
        actor=Actor(kind=ActorKind.USER, id=str(account_id)),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        legal_basis=LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="sign-up"),
        correlation_id=new_event_id(),
        trace=current_trace_context(),
        payload=event,
    )
    password_hash = _hasher.hash(body.password)
    try:
        async with rt.engine.begin() as conn:
            await conn.execute(
                accounts.insert().values(
                    account_id=account_id,
                    email_lookup=_lookup(rt.settings.master_key, body.email),
                    password_hash=password_hash,
                    status="open",
                    opened_at=envelope.occurred_at,
                )
            )
            await rt.append(conn, [envelope], expected_version=0)
    except IntegrityError:
        raise EmailTaken("Sign in instead, or use another address.") from None
    return AccountCreated(account_id=account_id, status="open")
