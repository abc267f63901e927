"""The user's consent records over HTTP: give, refuse, list, withdraw, receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from expensura_consent.recipients.domain import UnknownRecipients
from expensura_consent.records import service
from expensura_consent.records.domain import (
    MAX_CATEGORIES,
    MAX_RECIPIENTS,
    ConsentChoice,
    ConsentNotFound,
    ConsentRecord,
    InvalidConsent,
    NotActive,
    valid_at,
)
from expensura_events.envelope import utcnow
from expensura_events.fields import Identifier, Instant
from expensura_events.vocabulary import CollectionChannel, DataCategory, Purpose
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem

router = APIRouter(tags=["consents"])


class ConsentRequest(BaseModel):
    purpose: Purpose
    categories: Annotated[list[DataCategory], Field(min_length=1, max_length=MAX_CATEGORIES)]
    recipients: Annotated[list[Identifier], Field(max_length=MAX_RECIPIENTS)] = []
    policy_version: Annotated[Identifier, Field(max_length=50)]
    channel: CollectionChannel = CollectionChannel.PROVIDED_BY_USER
    given: bool = True
    expires_at: Instant | None = None


class ConsentOut(BaseModel):
    consent_id: UUID
    purpose: Purpose
    purpose_version: int
    categories: list[str]
    recipients: list[str]
    status: str
    valid_for_processing: bool
    given_at: datetime
    expires_at: datetime | None


class Receipt(BaseModel):
    receipt: str
    claims: dict[str, Any]


class VerifyRequest(BaseModel):
    receipt: Annotated[str, Field(min_length=10, max_length=20_000, pattern=r"^[A-Za-z0-9_.=-]+$")]


class Verification(BaseModel):
    valid: bool
    claims: dict[str, Any] | None = None
    reason: str | None = None


class InvalidConsentProblem(Problem):
    status, title = 422, "Invalid consent"


class ConsentNotFoundProblem(Problem):
    status, title = 404, "No such consent"


class AlreadyInactive(Problem):
    status, title = 409, "Consent is not active"


def _out(record: ConsentRecord) -> ConsentOut:
    return ConsentOut(
        consent_id=record.consent_id,
        purpose=record.purpose,
        purpose_version=record.purpose_version,
        categories=sorted(record.categories),
        recipients=sorted(record.recipients),
        status=record.status.value,
        valid_for_processing=valid_at(record, utcnow()),
        given_at=record.given_at,
        expires_at=record.expires_at,
    )


@router.post("/v1/me/consents", status_code=201, responses={422: {}})
async def record_consent(body: ConsentRequest, caller: CurrentUser, rt: Runtime) -> ConsentOut:
    """Give (or refuse) consent to a purpose for named data categories (and recipients).

    `policy_version` is a published version (`GET /v1/policy-versions/current`), recipients
    are from `GET /v1/recipients`: anything else is refused with 422 and nothing recorded."""
    choice = ConsentChoice(
        purpose=body.purpose,
        categories=frozenset(c.value for c in body.categories),
        recipients=frozenset(body.recipients),
        policy_version=body.policy_version,
        channel=body.channel,
        given=body.given,
        expires_at=body.expires_at,
    )
    try:
        return _out(await service.give(rt, caller.id, choice))
    except (InvalidConsent, UnknownRecipients) as exc:
        raise InvalidConsentProblem(str(exc)) from None


@router.get("/v1/me/consents")
async def my_consents(caller: CurrentUser, rt: Runtime) -> list[ConsentOut]:
    return [_out(r) for r in await service.consents(rt, caller.id)]


@router.delete("/v1/me/consents/{consent_id}", responses={404: {}, 409: {}})
async def withdraw_consent(consent_id: UUID, caller: CurrentUser, rt: Runtime) -> ConsentOut:
    """Withdraw consent. Effective at once: when this answers, no decision allows under it
    (RGT-4), whatever other services' projections still show."""
    try:
        return _out(await service.withdraw_consent(rt, caller.id, consent_id))
    except ConsentNotFound:
        raise ConsentNotFoundProblem(f"You have no consent {consent_id}.") from None
    except NotActive as exc:
        raise AlreadyInactive(str(exc)) from None


@router.get("/v1/me/consents/{consent_id}/receipt", responses={404: {}})
async def consent_receipt(consent_id: UUID, caller: CurrentUser, rt: Runtime) -> Receipt:
    """A signed receipt of this consent and its history, verifiable by anyone."""
    try:
        signed = await service.receipt(rt, caller.id, consent_id)
    except ConsentNotFound:
        raise ConsentNotFoundProblem(f"You have no consent {consent_id}.") from None
    return Receipt(receipt=signed.token, claims=signed.claims)


@router.get("/.well-known/consent-receipt-keys.json", tags=["consents"])
async def receipt_public_keys(rt: Runtime) -> dict[str, Any]:
    return await service.public_keys(rt)


@router.post("/v1/consent-receipts/verify")
async def verify_receipt(body: VerifyRequest, rt: Runtime) -> Verification:
    """Check a receipt's signature against our published keys (anyone may ask)."""
    try:
        claims = await service.verify_receipt(rt, body.receipt)
    except service.InvalidReceipt as exc:
        return Verification(valid=False, reason=str(exc))
    return Verification(valid=True, claims=claims)
