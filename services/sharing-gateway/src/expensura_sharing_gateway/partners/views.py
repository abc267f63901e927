"""Partner registry, confidentiality agreements and credentials (SHR-3), for staff, over
HTTP: parse, call the service, map its errors to problem+json. Each is requested by one
privacy officer and approved or rejected by a second (four eyes, `…/approval`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from expensura_events.auth import Principal
from expensura_events.envelope import Actor
from expensura_events.fields import FieldName, Identifier, Instant, ShortText, SingleLine
from expensura_events.four_eyes import (
    MIN_REASON_LENGTH,
    Approval,
    Approver,
    Verdict,
)
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.partners import service
from expensura_sharing_gateway.partners.domain import (
    AgreementTerms,
    InvalidAgreement,
    InvalidApproval,
    InvalidScopes,
    NoSuchAgreement,
    NoSuchCredential,
    NoSuchPartner,
    PartnerExists,
    PartnerKind,
)

router = APIRouter(tags=["partners"])
# Partners receive personal data: privacy officers only, never administrators (SEC-2).
Officer = Annotated[Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER))]
PartnerId = Annotated[Identifier, Path()]
ClientId = Annotated[Identifier, Path()]


class NewPartner(BaseModel):
    partner_id: Annotated[Identifier, Field(max_length=100)]
    name: Annotated[SingleLine, Field(max_length=200)]
    kind: PartnerKind


class Registration(NewPartner):
    approval: Approval


class AgreementOut(BaseModel):
    agreement_id: UUID
    approval: Approval


class Decide(BaseModel):
    decision: Verdict
    reason: Annotated[ShortText, Field(min_length=MIN_REASON_LENGTH)]


class NewAgreement(BaseModel):
    reference: Annotated[SingleLine, Field(max_length=200)]
    purposes: Annotated[list[Purpose], Field(min_length=1, max_length=12)]
    fields: Annotated[list[FieldName], Field(max_length=20)]
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
    approval: Approval = Approval.PENDING


class Conflict(Problem):
    status, title = 409, "Already exists"


class Invalid(Problem):
    status, title = 422, "Invalid request"


class NotFound(Problem):
    status, title = 404, "Not found"


def _approver(who: Principal) -> Approver:
    return Approver(kind=who.kind, id=who.id, roles=who.roles, mfa=who.mfa)


def _staff(who: Principal) -> Actor:
    return Actor(kind=who.kind, id=who.id)


@router.post("/v1/partners", status_code=201, responses={409: {}})
async def register_partner(body: NewPartner, who: Officer, rt: Runtime) -> Registration:
    """Request a partner's registration: `pending` until a second privacy officer approves
    it (`POST /v1/partners/{id}/approval`); only then can it get tokens, and only then may a
    consent or a ground name it."""
    try:
        await service.register_partner(rt, body.partner_id, body.name, body.kind, _staff(who))
    except PartnerExists as exc:
        raise Conflict(str(exc)) from None
    return Registration(**body.model_dump(), approval=Approval.PENDING)


@router.post("/v1/partners/{partner_id}/approval", responses={403: {}, 404: {}, 409: {}})
async def decide_partner(
    partner_id: PartnerId, body: Decide, who: Officer, rt: Runtime
) -> Registration:
    """A second privacy officer, never the one who asked, approves or rejects a pending
    registration, once."""
    try:
        decided = await service.decide_partner_request(
            rt, partner_id, _approver(who), body.decision, body.reason
        )
    except NoSuchPartner as exc:
        raise NotFound(str(exc)) from None
    except InvalidApproval as exc:
        raise Invalid(str(exc)) from None
    return Registration(
        partner_id=decided.partner_id,
        name=decided.name,
        kind=decided.kind,
        approval=decided.approval,
    )


@router.post("/v1/partners/{partner_id}/agreements", status_code=201, responses={404: {}})
async def sign_agreement(
    partner_id: PartnerId, body: NewAgreement, who: Officer, rt: Runtime
) -> AgreementOut:
    """Request a confidentiality agreement: its reference, the purposes and fields it covers,
    whether it covers data the partner sends us, and its term. It covers nothing until a
    second privacy officer approves it (`…/agreements/{id}/approval`)."""
    try:
        terms = AgreementTerms(
            reference=body.reference,
            purposes=tuple(body.purposes),
            fields=body.fields,
            inbound=body.inbound,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
        )
        agreement_id = await service.sign_agreement(rt, partner_id, terms, _staff(who))
    except InvalidAgreement as exc:
        raise Invalid(str(exc)) from None
    except NoSuchPartner as exc:
        raise NotFound(str(exc)) from None
    return AgreementOut(agreement_id=agreement_id, approval=Approval.PENDING)


@router.post(
    "/v1/partners/{partner_id}/agreements/{agreement_id}/approval",
    responses={403: {}, 404: {}, 409: {}},
)
async def decide_agreement(
    partner_id: PartnerId, agreement_id: UUID, body: Decide, who: Officer, rt: Runtime
) -> AgreementOut:
    """A second privacy officer, never the one who asked, approves (the agreement is signed)
    or rejects a pending agreement, once."""
    try:
        decided = await service.decide_agreement_request(
            rt, partner_id, agreement_id, _approver(who), body.decision, body.reason
        )
    except NoSuchAgreement as exc:
        raise NotFound(str(exc)) from None
    except InvalidApproval as exc:
        raise Invalid(str(exc)) from None
    return AgreementOut(agreement_id=agreement_id, approval=decided.approval)


@router.post("/v1/partners/{partner_id}/credentials", status_code=201, responses={404: {}})
async def issue_credential(
    partner_id: PartnerId, body: NewCredential, who: Officer, rt: Runtime
) -> Credential:
    """A client id and secret (shown once) for the OAuth2 client-credentials grant; they get
    no token until a second privacy officer approves the credential
    (`…/credentials/{client_id}/approval`). Rotate by issuing a new one and revoking the
    old."""
    try:
        issued = await service.issue_credential(
            rt, partner_id, body.scopes, body.valid_days, _staff(who)
        )
    except InvalidScopes as exc:
        raise Invalid(str(exc)) from None
    except NoSuchPartner as exc:
        raise NotFound(str(exc)) from None
    return Credential(
        client_id=issued.credential.client_id,
        client_secret=issued.client_secret,
        scopes=list(issued.credential.scopes),
        expires_at=issued.credential.expires_at,
    )


@router.post(
    "/v1/partners/{partner_id}/credentials/{client_id}/approval",
    responses={403: {}, 404: {}, 409: {}},
)
async def decide_credential(
    partner_id: PartnerId, client_id: ClientId, body: Decide, who: Officer, rt: Runtime
) -> Credential:
    """A second privacy officer, never the one who asked, approves (the credential is
    issued) or rejects a pending credential, once."""
    try:
        decided = await service.decide_credential_request(
            rt, partner_id, client_id, _approver(who), body.decision, body.reason
        )
    except NoSuchCredential as exc:
        raise NotFound(str(exc)) from None
    except InvalidApproval as exc:
        raise Invalid(str(exc)) from None
    return Credential(
        client_id=client_id,
        scopes=list(decided.scopes),
        expires_at=decided.expires_at,
        approval=decided.approval,
    )


@router.delete("/v1/partners/{partner_id}/credentials/{client_id}", responses={404: {}})
async def revoke_credential(
    partner_id: PartnerId, client_id: ClientId, who: Officer, rt: Runtime
) -> Credential:
    """Revoke at once: tokens already issued under it stop working too."""
    try:
        revoked = await service.revoke_credential(rt, partner_id, client_id, _staff(who))
    except NoSuchCredential as exc:
        raise NotFound(str(exc)) from None
    return Credential(
        client_id=client_id,
        scopes=list(revoked.scopes),
        expires_at=revoked.expires_at,
        revoked=True,
        approval=revoked.approval,
    )
