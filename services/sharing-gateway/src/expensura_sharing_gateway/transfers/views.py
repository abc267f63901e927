"""Transfers to a successor (TRF-1) and public disclosure (PUB-1): the evidence each needs."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from expensura_events.auth import Principal
from expensura_events.catalog.sharing import PublicDisclosureMade, TransferRecorded
from expensura_events.envelope import Actor, LegalBasis
from expensura_events.fields import Identifier, SingleLine
from expensura_events.vocabulary import PUBLIC_RECIPIENT, LegalGround, Purpose, StaffRole
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.disclosures import clients
from expensura_sharing_gateway.partners.domain import FIELD_CATEGORIES, categories_of

router = APIRouter(tags=["transfers and public disclosure"])
Administrator = Annotated[Principal, Depends(staff_with(StaffRole.ADMINISTRATOR))]
Officer = Annotated[
    Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER, StaffRole.ADMINISTRATOR))
]
PUBLIC = PUBLIC_RECIPIENT


class TransferRequest(BaseModel):
    successor: Annotated[SingleLine, Field(max_length=200)]
    reason: Annotated[str, Field(pattern="^(merger|acquisition|asset-transfer|bankruptcy)$")]
    commitment_reference: Annotated[SingleLine, Field(max_length=500)] | None = None
    reconsent: bool = False

    @model_validator(mode="after")
    def evidence(self) -> TransferRequest:
        if self.commitment_reference is None and not self.reconsent:
            raise ValueError(
                "a successor must commit to this policy (commitment_reference) "
                "or consent must be obtained again (reconsent: true)"
            )
        return self


class Transfer(BaseModel):
    transfer_id: UUID
    reconsent_required: bool


class PublicRequest(BaseModel):
    subject_id: Identifier
    fields: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]], Field(min_length=1, max_length=10)
    ]
    purpose: Purpose


class PublicDisclosure(BaseModel):
    disclosure_id: UUID
    decision_id: UUID
    basis: dict[str, Any]
    data: dict[str, str | None]


class Refused(Problem):
    status, title = 403, "Public disclosure refused"


class Unavailable(Problem):
    status, title = 503, "A dependency is unavailable"


@router.post("/v1/transfers", status_code=201)
async def record_transfer(body: TransferRequest, who: Administrator, rt: Runtime) -> Transfer:
    """A merger or acquisition: the successor is bound by this policy (its commitment is the
    evidence), or every user is asked for consent again before anything moves."""
    transfer_id = uuid4()
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    TransferRecorded(
                        transfer_id=transfer_id,
                        successor=body.successor,
                        reason=body.reason,
                        commitment_reference=body.commitment_reference,
                        reconsent_required=body.commitment_reference is None,
                    ),
                    stream_id=f"transfer-{transfer_id}",
                    subject_id=None,
                    actor=Actor(kind=who.kind, id=who.id),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                    legal_basis=LegalBasis(
                        ground=LegalGround.OTHER_LAW,
                        reference=body.commitment_reference or "re-consent",
                    ),
                )
            ],
        )
    return Transfer(transfer_id=transfer_id, reconsent_required=body.commitment_reference is None)


@router.post("/v1/public-disclosures", status_code=201, responses={403: {}, 503: {}})
async def public_disclosure(body: PublicRequest, who: Officer, rt: Runtime) -> PublicDisclosure:
    """Make a subject's data public only on the subject's explicit consent for this request
    (a consent naming the recipient `public`) or a legal mandate (a legal ground invoked with
    `public` as recipient)."""
    fields = sorted(set(body.fields) & set(FIELD_CATEGORIES))
    if not fields:
        raise Refused("no known fields requested")
    try:
        decision = await clients.decide(
            rt.settings.service_urls, body.subject_id, body.purpose, categories_of(fields), PUBLIC
        )
        if not decision.allowed:
            raise Refused(f"neither explicit consent nor a legal mandate: {decision.reason}")
        values = await clients.disclosable_values(
            rt.settings.service_urls, body.subject_id, fields, decision.decision_id, PUBLIC
        )
    except clients.DependencyDown as exc:
        raise Unavailable(f"{exc}; nothing was disclosed.", retry_after=5) from None
    disclosure_id = uuid4()
    basis = decision.basis.model_dump(mode="json")
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    PublicDisclosureMade(
                        disclosure_id=disclosure_id,
                        fields=fields,
                        decision_id=decision.decision_id,
                        basis=basis,
                    ),
                    stream_id=f"public-{disclosure_id}",
                    subject_id=body.subject_id,
                    actor=Actor(kind=who.kind, id=who.id),
                    purpose=body.purpose,
                    legal_basis=decision.basis.legal_basis(),
                )
            ],
        )
    return PublicDisclosure(
        disclosure_id=disclosure_id,
        decision_id=decision.decision_id,
        basis=basis,
        data=values,
    )
