"""The user's consent records over HTTP: give, refuse, list, withdraw, receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import jwt
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from expensura_consent.purposes import taxonomy
from expensura_consent.recipients.projection import registered
from expensura_consent.records import receipts
from expensura_consent.records.domain import (
    VALID_FOR_PROCESSING,
    ConsentStatus,
    InvalidConsent,
    check_recipients,
    validate_new_consent,
)
from expensura_consent.tables import consent_records, policy_versions, receipt_signing_keys
from expensura_events.catalog.consent import ConsentGiven, ConsentRefused, ConsentWithdrawn
from expensura_events.cipher import MasterKey
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.fields import Identifier, Instant
from expensura_events.signing import SigningKeys
from expensura_events.vocabulary import (
    ActorKind,
    CollectionChannel,
    DataCategory,
    LegalGround,
    Purpose,
)
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem

router = APIRouter(tags=["consents"])


class ConsentRequest(BaseModel):
    purpose: Purpose
    categories: Annotated[list[DataCategory], Field(min_length=1, max_length=20)]
    recipients: Annotated[list[Identifier], Field(max_length=20)] = []
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


class ConsentNotFound(Problem):
    status, title = 404, "No such consent"


class AlreadyInactive(Problem):
    status, title = 409, "Consent is not active"


def _out(row: Any) -> ConsentOut:
    return ConsentOut(
        consent_id=row.consent_id,
        purpose=Purpose(row.purpose),
        purpose_version=row.purpose_version,
        categories=row.categories,
        recipients=row.recipients,
        status=row.status,
        valid_for_processing=ConsentStatus(row.status) in VALID_FOR_PROCESSING
        and (row.expires_at is None or row.expires_at > utcnow()),
        given_at=row.given_at,
        expires_at=row.expires_at,
    )


def receipt_keys(rt: Runtime) -> SigningKeys:
    return SigningKeys(
        rt.engine,
        MasterKey.from_base64(rt.settings.master_key),
        receipt_signing_keys,
        usage="consent-receipt",
    )


@router.post("/v1/me/consents", status_code=201, responses={422: {}})
async def record_consent(body: ConsentRequest, caller: CurrentUser, rt: Runtime) -> ConsentOut:
    """Give (or refuse) consent to a purpose for named data categories (and recipients).

    `policy_version` is a published version (`GET /v1/policy-versions/current`), recipients
    are from `GET /v1/recipients`: anything else is refused with 422 and nothing recorded."""
    categories = {c.value for c in body.categories}
    recipients = set(body.recipients)
    now = utcnow()
    if body.expires_at is not None and body.expires_at <= now:
        raise InvalidConsentProblem("expires_at must be in the future")
    try:
        validate_new_consent(body.purpose, categories, recipients)
    except InvalidConsent as exc:
        raise InvalidConsentProblem(str(exc)) from None
    consent_id = uuid4()
    current = taxonomy.current(body.purpose)
    status = ConsentStatus.GIVEN if body.given else ConsentStatus.REFUSED
    event: ConsentGiven | ConsentRefused
    if body.given:
        event = ConsentGiven(
            consent_id=consent_id,
            purpose=body.purpose,
            purpose_version=current.version,
            categories=sorted(categories),
            recipients=sorted(recipients),
            policy_version=body.policy_version,
            channel=body.channel,
            expires_at=body.expires_at,
        )
    else:
        event = ConsentRefused(
            consent_id=consent_id,
            purpose=body.purpose,
            purpose_version=current.version,
            policy_version=body.policy_version,
            channel=body.channel,
        )
    async with rt.engine.begin() as conn:
        published = (
            await conn.execute(
                select(policy_versions.c.version).where(
                    policy_versions.c.version == body.policy_version
                )
            )
        ).first()
        if published is None:
            raise InvalidConsentProblem(
                f"policy version {body.policy_version} was never published "
                "(see GET /v1/policy-versions/current)"
            )
        try:
            check_recipients(recipients, await registered(conn, recipients))
        except InvalidConsent as exc:
            raise InvalidConsentProblem(str(exc)) from None
        await conn.execute(
            consent_records.insert().values(
                consent_id=consent_id,
                subject_id=caller.id,
                purpose=body.purpose.value,
                purpose_version=current.version,
                categories=sorted(categories),
                recipients=sorted(recipients),
                policy_version=body.policy_version,
                channel=body.channel.value,
                status=status.value,
                given_at=now,
                expires_at=body.expires_at,
                updated_at=now,
            )
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=f"consent-{consent_id}",
                    subject_id=caller.id,
                    actor=Actor(kind=ActorKind.USER, id=caller.id),
                    purpose=body.purpose,
                    legal_basis=LegalBasis(ground=LegalGround.CONSENT, reference=str(consent_id)),
                )
            ],
            expected_version=0,
        )
        row = (
            await conn.execute(
                select(consent_records).where(consent_records.c.consent_id == consent_id)
            )
        ).one()
    return _out(row)


@router.get("/v1/me/consents")
async def my_consents(caller: CurrentUser, rt: Runtime) -> list[ConsentOut]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(consent_records)
            .where(consent_records.c.subject_id == caller.id)
            .order_by(consent_records.c.given_at)
        )
        return [_out(r) for r in rows]


async def _own(rt: Runtime, caller_id: str, consent_id: UUID, conn: Any) -> Any:
    row = (
        await conn.execute(
            select(consent_records)
            .where(consent_records.c.consent_id == consent_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None or row.subject_id != caller_id:
        # another user's consent looks exactly like a missing one
        raise ConsentNotFound(f"You have no consent {consent_id}.")
    return row


@router.delete("/v1/me/consents/{consent_id}", responses={404: {}, 409: {}})
async def withdraw_consent(consent_id: UUID, caller: CurrentUser, rt: Runtime) -> ConsentOut:
    """Withdraw consent. Effective at once: when this answers, no decision allows under it
    (RGT-4), whatever other services' projections still show."""
    async with rt.engine.begin() as conn:
        row = await _own(rt, caller.id, consent_id, conn)
        if ConsentStatus(row.status) not in VALID_FOR_PROCESSING:
            raise AlreadyInactive(f"The consent is {row.status}.")
        await conn.execute(
            update(consent_records)
            .where(consent_records.c.consent_id == consent_id)
            .values(status=ConsentStatus.WITHDRAWN.value, updated_at=utcnow())
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    ConsentWithdrawn(consent_id=consent_id, purpose=Purpose(row.purpose)),
                    stream_id=f"consent-{consent_id}",
                    subject_id=caller.id,
                    actor=Actor(kind=ActorKind.USER, id=caller.id),
                    purpose=Purpose(row.purpose),
                    legal_basis=LegalBasis(ground=LegalGround.CONSENT, reference=str(consent_id)),
                )
            ],
        )
        row = (
            await conn.execute(
                select(consent_records).where(consent_records.c.consent_id == consent_id)
            )
        ).one()
    return _out(row)


@router.get("/v1/me/consents/{consent_id}/receipt", responses={404: {}})
async def consent_receipt(consent_id: UUID, caller: CurrentUser, rt: Runtime) -> Receipt:
    """A signed receipt of this consent and its history, verifiable by anyone."""
    async with rt.engine.connect() as conn:
        row = await _own(rt, caller.id, consent_id, conn)
        events = await rt.store.read_stream(conn, f"consent-{consent_id}")
    history = [
        {"event": e.event_type.split(".")[-1], "at": e.occurred_at.isoformat()} for e in events
    ]
    claims = receipts.receipt_claims(row, history)
    token = receipts.sign(claims, await receipt_keys(rt).active())
    return Receipt(receipt=token, claims=claims)


@router.get("/.well-known/consent-receipt-keys.json", tags=["consents"])
async def receipt_public_keys(rt: Runtime) -> dict[str, Any]:
    return await receipt_keys(rt).jwks()


@router.post("/v1/consent-receipts/verify")
async def verify_receipt(body: VerifyRequest, rt: Runtime) -> Verification:
    """Check a receipt's signature against our published keys (anyone may ask)."""
    try:
        claims = receipts.verify(body.receipt, await receipt_keys(rt).jwks())
    except (jwt.PyJWTError, ValueError) as exc:
        return Verification(valid=False, reason=str(exc) or type(exc).__name__)
    return Verification(valid=True, claims=claims)
