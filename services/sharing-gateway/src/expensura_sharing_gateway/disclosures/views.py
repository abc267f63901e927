"""Disclosure to partners (SHR-1, SHR-2, SHR-3, USE-8), inbound data (COL-4), transparency."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from expensura_events.catalog.sharing import (
    DisclosureMade,
    DisclosureRefused,
    InboundDataAccepted,
    InboundDataRefused,
)
from expensura_events.contracts.decisions import DecisionOut
from expensura_events.envelope import Actor, utcnow
from expensura_events.fields import Identifier, ShortText, SingleLine
from expensura_events.vocabulary import (
    ActorKind,
    CollectionChannel,
    DataCategory,
    Purpose,
)
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.disclosures import clients
from expensura_sharing_gateway.partner_auth import CurrentPartner, Partner
from expensura_sharing_gateway.partners.domain import (
    CASE_REQUIRED,
    Agreement,
    DisclosureRefusal,
    PartnerKind,
    categories_of,
    covering_agreement,
    minimise,
)
from expensura_sharing_gateway.tables import agreements, disclosures

router = APIRouter(tags=["disclosures"])


class DisclosureRequest(BaseModel):
    subject_id: Identifier
    purpose: Purpose
    fields: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]], Field(min_length=1, max_length=20)
    ]
    case_reference: Annotated[SingleLine, Field(max_length=200)] | None = None


class Disclosure(BaseModel):
    disclosure_id: UUID
    subject_id: str
    purpose: Purpose
    data: dict[str, str | None]
    decision_id: UUID
    basis: dict[str, Any]


class InboundRequest(BaseModel):
    subject_id: Identifier
    purpose: Purpose
    category: DataCategory
    value: Annotated[ShortText, Field(max_length=5000)]


class InboundAccepted(BaseModel):
    accepted: bool
    channel: CollectionChannel


class MyDisclosure(BaseModel):
    disclosure_id: UUID
    partner_id: str
    purpose: str
    fields: list[str]
    outcome: str
    reason: str
    ground: str | None
    case_reference: str | None
    at: datetime


class Refused(Problem):
    status, title = 403, "Disclosure refused"


class OutOfScope(Problem):
    status, title = 403, "Purpose not in this token's scope"


class Unavailable(Problem):
    status, title = 503, "A dependency is unavailable"


async def _agreements(rt: Runtime, partner_id: str) -> list[Agreement]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(select(agreements).where(agreements.c.partner_id == partner_id))
        return [
            Agreement(
                str(r.agreement_id),
                r.reference,
                frozenset(Purpose(p) for p in r.purposes),
                frozenset(r.fields),
                r.inbound,
                r.starts_at,
                r.ends_at,
            )
            for r in rows
        ]


async def _refuse(
    rt: Runtime,
    who: Partner,
    body: DisclosureRequest,
    disclosure_id: UUID,
    reason: str,
    decision_id: UUID | None = None,
) -> Refused:
    now = utcnow()
    async with rt.engine.begin() as conn:
        await conn.execute(
            disclosures.insert().values(
                disclosure_id=disclosure_id,
                subject_id=body.subject_id,
                partner_id=who.partner_id,
                purpose=body.purpose.value,
                fields=sorted(body.fields),
                outcome="refused",
                reason=reason,
                decision_id=decision_id,
                case_reference=body.case_reference,
                at=now,
            )
        )
        # Refusals are facts about the partner's request, recorded whatever the subject's
        # state: the purpose is enforcing security, not using the subject's data.
        await rt.append(
            conn,
            [
                rt.envelope(
                    DisclosureRefused(
                        disclosure_id=disclosure_id,
                        partner_id=who.partner_id,
                        fields=sorted(body.fields),
                        reason=reason,
                        decision_id=decision_id,
                    ),
                    stream_id=f"disclosure-{disclosure_id}",
                    subject_id=body.subject_id,
                    actor=Actor(kind=ActorKind.PARTNER, id=who.partner_id),
                    purpose=Purpose.SECURITY,
                )
            ],
        )
    return Refused(reason, disclosure_id=str(disclosure_id))


@router.post("/v1/disclosures", responses={403: {}, 409: {}, 503: {}})
async def disclose(body: DisclosureRequest, who: CurrentPartner, rt: Runtime) -> Disclosure:
    """Ask for a subject's data for a purpose. You get only the fields your kind, the purpose
    and your agreement allow, and only on a consent or a legal ground; every answer, yes or
    no, is recorded."""
    if body.purpose.value not in who.scopes:
        raise OutOfScope(f"The token does not carry the scope {body.purpose.value}.")
    disclosure_id, now = uuid4(), utcnow()
    if body.purpose in CASE_REQUIRED and not body.case_reference:
        raise await _refuse(
            rt, who, body, disclosure_id, "a dispute or legal request must name its case"
        )
    try:
        agreement = covering_agreement(await _agreements(rt, who.partner_id), body.purpose, now)
        fields = minimise(PartnerKind(who.kind), body.purpose, agreement, set(body.fields))
    except DisclosureRefusal as exc:
        raise await _refuse(rt, who, body, disclosure_id, str(exc)) from None
    try:
        decision = await clients.decide(
            rt.settings.service_urls,
            body.subject_id,
            body.purpose,
            categories_of(fields),
            who.partner_id,
        )
        if not decision.allowed:
            raise await _refuse(
                rt,
                who,
                body,
                disclosure_id,
                f"consent service: {decision.reason}",
                decision.decision_id,
            )
        values = await clients.disclosable_values(
            rt.settings.service_urls, body.subject_id, fields, decision.decision_id, who.partner_id
        )
    except clients.DependencyDown as exc:
        raise Unavailable(f"{exc}; nothing was disclosed.", retry_after=5) from None
    basis = decision.basis.model_dump(mode="json")
    ground = decision.basis.legal_basis()
    async with rt.engine.begin() as conn:
        await conn.execute(
            disclosures.insert().values(
                disclosure_id=disclosure_id,
                subject_id=body.subject_id,
                partner_id=who.partner_id,
                purpose=body.purpose.value,
                fields=fields,
                outcome="disclosed",
                reason=decision.reason,
                ground=ground.ground.value,
                decision_id=decision.decision_id,
                case_reference=body.case_reference,
                at=now,
            )
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    DisclosureMade(
                        disclosure_id=disclosure_id,
                        partner_id=who.partner_id,
                        fields=fields,
                        decision_id=decision.decision_id,
                        decided_at=decision.decided_at,
                        basis=basis,
                        agreement_id=UUID(agreement.agreement_id),
                        case_reference=body.case_reference,
                    ),
                    stream_id=f"disclosure-{disclosure_id}",
                    subject_id=body.subject_id,
                    actor=Actor(kind=ActorKind.PARTNER, id=who.partner_id),
                    purpose=body.purpose,
                    legal_basis=ground,
                )
            ],
        )
    return Disclosure(
        disclosure_id=disclosure_id,
        subject_id=body.subject_id,
        purpose=body.purpose,
        data={f: values.get(f) for f in fields},
        decision_id=decision.decision_id,
        basis=basis,
    )


@router.post("/v1/inbound", responses={403: {}, 409: {}, 503: {}})
async def inbound(body: InboundRequest, who: CurrentPartner, rt: Runtime) -> InboundAccepted:
    """Data a partner offers about a subject (COL-4): accepted only with the subject's consent
    naming this partner and an agreement covering inbound data for the purpose."""
    if "inbound" not in who.scopes:
        raise OutOfScope("The token does not carry the scope inbound.")
    reason: str | None = None
    decision: DecisionOut | None = None
    agreement: Agreement | None = None
    try:
        agreement = covering_agreement(
            await _agreements(rt, who.partner_id), body.purpose, utcnow(), inbound=True
        )
        decision = await clients.decide(
            rt.settings.service_urls,
            body.subject_id,
            body.purpose,
            [body.category.value],
            who.partner_id,
        )
        if not decision.allowed:
            reason = f"consent service: {decision.reason}"
    except DisclosureRefusal as exc:
        reason = str(exc)
    except clients.DependencyDown as exc:
        raise Unavailable(f"{exc}; nothing was stored.", retry_after=5) from None
    actor = Actor(kind=ActorKind.PARTNER, id=who.partner_id)
    async with rt.engine.begin() as conn:
        if reason is not None or decision is None or agreement is None:
            await rt.append(
                conn,
                [
                    rt.envelope(
                        InboundDataRefused(
                            partner_id=who.partner_id,
                            category=body.category,
                            reason=reason or "refused",
                        ),
                        stream_id=f"inbound-{body.subject_id}",
                        subject_id=body.subject_id,
                        actor=actor,
                        purpose=Purpose.SECURITY,
                    )
                ],
            )
        else:
            await rt.append(
                conn,
                [
                    rt.envelope(
                        InboundDataAccepted(
                            partner_id=who.partner_id,
                            channel=CollectionChannel.FROM_PARTNER_WITH_CONSENT,
                            category=body.category,
                            value=body.value,
                            decision_id=decision.decision_id,
                            agreement_id=UUID(agreement.agreement_id),
                        ),
                        stream_id=f"inbound-{body.subject_id}",
                        subject_id=body.subject_id,
                        actor=actor,
                        purpose=body.purpose,
                        legal_basis=decision.basis.legal_basis(),
                    )
                ],
            )
    if reason is not None:
        raise Refused(reason)
    return InboundAccepted(accepted=True, channel=CollectionChannel.FROM_PARTNER_WITH_CONSENT)


@router.get("/v1/me/disclosures")
async def my_disclosures(caller: CurrentUser, rt: Runtime) -> list[MyDisclosure]:
    """Every disclosure of your data and every refused request: to whom, when, why, on what
    ground."""
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(disclosures)
            .where(disclosures.c.subject_id == caller.id)
            .order_by(disclosures.c.at)
        )
        return [
            MyDisclosure(
                disclosure_id=r.disclosure_id,
                partner_id=r.partner_id,
                purpose=r.purpose,
                fields=r.fields,
                outcome=r.outcome,
                reason=r.reason,
                ground=r.ground,
                case_reference=r.case_reference,
                at=r.at,
            )
            for r in rows
        ]
