"""HTTP routes for accounts."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

from argon2 import PasswordHasher
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from expensura_events.envelope import Actor, LegalBasis
from expensura_events.fields import EmailAddress, PhoneNumber, Secret
from expensura_events.vocabulary import ActorKind, LegalGround, Purpose
from expensura_events.web.auth import Runtime
from expensura_events.web.problems import Problem
from expensura_identity.accounts.domain import InvalidAccountDetails, OpenAccount, open_account
from expensura_identity.accounts.lookup import email_lookup
from expensura_identity.accounts.tables import accounts

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
password_hasher = PasswordHasher()


class OpenAccountRequest(BaseModel):
    email: EmailAddress
    phone: PhoneNumber | None = None
    password: Annotated[Secret, Field(min_length=10)]


class AccountCreated(BaseModel):
    account_id: UUID
    status: str


class InvalidDetails(Problem):
    status, title = 422, "Invalid account details"


class EmailTaken(Problem):
    status, title = 409, "An account with this e-mail exists"


@router.post("", status_code=201, responses={409: {}, 422: {}, 503: {}})
async def open_account_route(body: OpenAccountRequest, rt: Runtime) -> AccountCreated:
    """Sign up. The account row and its `AccountOpened` event commit together."""
    account_id = uuid4()
    try:
        event = open_account(OpenAccount(account_id, body.email, body.phone))
    except InvalidAccountDetails as exc:
        raise InvalidDetails(str(exc)) from None
    envelope = rt.envelope(
        event,
        stream_id=f"account-{account_id}",
        subject_id=str(account_id),
        actor=Actor(kind=ActorKind.USER, id=str(account_id)),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        legal_basis=LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="sign-up"),
    )
    password_hash = password_hasher.hash(body.password)
    try:
        async with rt.engine.begin() as conn:
            await conn.execute(
                accounts.insert().values(
                    account_id=account_id,
                    email_lookup=email_lookup(rt.settings.master_key, body.email),
                    password_hash=password_hash,
                    status="open",
                    opened_at=envelope.occurred_at,
                )
            )
            await rt.append(conn, [envelope], expected_version=0)
    except IntegrityError:
        raise EmailTaken("Sign in instead, or use another address.") from None
    return AccountCreated(account_id=account_id, status="open")
