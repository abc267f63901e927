"""Partner registry, confidentiality agreements and credentials (SHR-3), for staff."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated
from uuid import uuid4

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from expensura_events.auth import Principal
from expensura_events.catalog.sharing import (
    ConfidentialityAgreementSigned,
    PartnerCredentialIssued,
    PartnerCredentialRevoked,
    PartnerRegistered,
)
from expensura_events.envelope import Actor, utcnow
from expensura_events.fields import Identifier, Instant, SingleLine
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.partner_auth import hasher
from expensura_sharing_gateway.partners.domain import FIELD_CATEGORIES, PartnerKind
from expensura_sharing_gateway.tables import agreements, partner_credentials, partners

router = APIRouter(tags=["partners"])
Officer = Annotated[
    Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER, StaffRole.ADMINISTRATOR))
]
PartnerId = Annotated[Identifier, Path()]


class NewPartner(BaseModel):
    partner_id: Annotated[Identifier, Field(max_length=100)]
    name: Annotated[SingleLine, Field(max_length=200)]
    kind: PartnerKind


class NewAgreement(BaseModel):
    reference: Annotated[SingleLine, Field(max_length=200)]
    purposes: Annotated[list[Purpose], Field(min_length=1, max_length=12)]
    fields: Annotated[list[Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]], Field(max_length=20)]
    inbound: bool = False
    starts_at: Instant
    ends_at: Instant


class NewCredential(BaseModel):
    scopes: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z-]{3,40}$")]], Field(min_length=1, max_length=13)
    ]
    valid_days: Annotated[int, Field(ge=1, le=730)] = 365


class Credential(BaseModel):
    client_id: str
    client_secret: str | None = None  # shown once, at issue
    scopes: list[str]
    expires_at: datetime
    revoked: bool = False


class Conflict(Problem):
    status, title = 409, "Already exists"


class Invalid(Problem):
    status, title = 422, "Invalid request"


class NotFound(Problem):
    status, title = 404, "Not found"


def _staff(who: Principal) -> Actor:
    return Actor(kind=who.kind, id=who.id)


@router.post("/v1/partners", status_code=201, responses={409: {}})
async def register_partner(body: NewPartner, who: Officer, rt: Runtime) -> NewPartner:
    try:
        async with rt.engine.begin() as conn:
            await conn.execute(
                partners.insert().values(
                    partner_id=body.partner_id,
                    name=body.name,
                    kind=body.kind.value,
                    created_at=utcnow(),
                )
            )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        PartnerRegistered(
                            partner_id=body.partner_id, kind=body.kind.value, name=body.name
                        ),
                        stream_id=f"partner-{body.partner_id}",
                        subject_id=None,
                        actor=_staff(who),
                        purpose=Purpose.LEGAL_COMPLIANCE,
                    )
                ],
                expected_version=0,
            )
    except IntegrityError:
        raise Conflict(f"Partner {body.partner_id} exists.") from None
    return body


async def _partner_exists(rt: Runtime, partner_id: str) -> None:
    async with rt.engine.connect() as conn:
        found = (
            await conn.execute(
                select(partners.c.partner_id).where(partners.c.partner_id == partner_id)
            )
        ).first()
    if found is None:
        raise NotFound(f"No partner {partner_id}.")


@router.post("/v1/partners/{partner_id}/agreements", status_code=201, responses={404: {}})
async def sign_agreement(
    partner_id: PartnerId, body: NewAgreement, who: Officer, rt: Runtime
) -> dict[str, str]:
    """Record a confidentiality agreement: its reference, the purposes and fields it covers,
    whether it covers data the partner sends us, and its term."""
    if body.ends_at <= body.starts_at:
        raise Invalid("ends_at must be after starts_at")
    if unknown := set(body.fields) - set(FIELD_CATEGORIES):
        raise Invalid(f"unknown fields: {', '.join(sorted(unknown))}")
    await _partner_exists(rt, partner_id)
    agreement_id = uuid4()
    async with rt.engine.begin() as conn:
        await conn.execute(
            agreements.insert().values(
                agreement_id=agreement_id,
                partner_id=partner_id,
                reference=body.reference,
                purposes=[p.value for p in body.purposes],
                fields=sorted(set(body.fields)),
                inbound=body.inbound,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
            )
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    ConfidentialityAgreementSigned(
                        agreement_id=agreement_id,
                        partner_id=partner_id,
                        reference=body.reference,
                        purposes=body.purposes,
                        fields=sorted(set(body.fields)),
                        inbound=body.inbound,
                        starts_at=body.starts_at,
                        ends_at=body.ends_at,
                    ),
                    stream_id=f"partner-{partner_id}",
                    subject_id=None,
                    actor=_staff(who),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                )
            ],
        )
    return {"agreement_id": str(agreement_id)}


@router.post("/v1/partners/{partner_id}/credentials", status_code=201, responses={404: {}})
async def issue_credential(
    partner_id: PartnerId, body: NewCredential, who: Officer, rt: Runtime
) -> Credential:
    """A client id and secret (shown once) for the OAuth2 client-credentials grant. Rotate by
    issuing a new one and revoking the old."""
    valid_scopes = {p.value for p in Purpose} | {"inbound"}
    if unknown := set(body.scopes) - valid_scopes:
        raise Invalid(f"unknown scopes: {', '.join(sorted(unknown))}")
    await _partner_exists(rt, partner_id)
    client_id = f"{partner_id}-{secrets.token_hex(6)}"
    secret = secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(days=body.valid_days)
    async with rt.engine.begin() as conn:
        await conn.execute(
            partner_credentials.insert().values(
                client_id=client_id,
                partner_id=partner_id,
                secret_hash=hasher.hash(secret),
                scopes=sorted(set(body.scopes)),
                created_at=utcnow(),
                expires_at=expires,
            )
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    PartnerCredentialIssued(
                        partner_id=partner_id,
                        client_id=client_id,
                        scopes=sorted(set(body.scopes)),
                        expires_at=expires,
                    ),
                    stream_id=f"partner-{partner_id}",
                    subject_id=None,
                    actor=_staff(who),
                    purpose=Purpose.SECURITY,
                )
            ],
        )
    return Credential(
        client_id=client_id,
        client_secret=secret,
        scopes=sorted(set(body.scopes)),
        expires_at=expires,
    )


@router.delete("/v1/partners/{partner_id}/credentials/{client_id}", responses={404: {}})
async def revoke_credential(
    partner_id: PartnerId, client_id: Annotated[Identifier, Path()], who: Officer, rt: Runtime
) -> Credential:
    """Revoke at once: tokens already issued under it stop working too."""
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(partner_credentials).where(
                    partner_credentials.c.client_id == client_id,
                    partner_credentials.c.partner_id == partner_id,
                )
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"No credential {client_id} for {partner_id}.")
        if row.revoked_at is None:
            await conn.execute(
                update(partner_credentials)
                .where(partner_credentials.c.client_id == client_id)
                .values(revoked_at=utcnow())
            )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        PartnerCredentialRevoked(partner_id=partner_id, client_id=client_id),
                        stream_id=f"partner-{partner_id}",
                        subject_id=None,
                        actor=_staff(who),
                        purpose=Purpose.SECURITY,
                    )
                ],
            )
    return Credential(
        client_id=client_id, scopes=row.scopes, expires_at=row.expires_at, revoked=True
    )
