"""Use cases of disclosure (SHR-1/2/3, USE-8), inbound data (COL-4), the subject's view of
both, and the proof of a withdrawal (RGT-4). Called by the views and by the operator CLI.

A disclosure: the scope, then the domain's plan (case, and for a dispute the case's subject
as loans' events tell it; agreement; minimised fields), then
the consent service's decision at this moment, then identity's values; each refusal is
committed with its event before it is raised, and a disclosure's row and DisclosureMade
commit together."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from expensura_events.catalog.sharing import DisclosureRefused, InboundDataRefused
from expensura_events.contracts.decisions import DecisionOut
from expensura_events.envelope import Actor, utcnow
from expensura_events.metrics import DISCLOSURES, DISCLOSURES_REFUSED
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_sharing_gateway.disclosures import clients, store
from expensura_sharing_gateway.disclosures.domain import (
    DISCLOSED,
    KNOWN_CASE_REQUIRED,
    REFUSED,
    DisclosureAsk,
    DisclosureRecord,
    DisclosureRefusal,
    InboundOffer,
    RefusalCode,
    Refused,
    WithdrawalProof,
    check_scope,
    covering_agreement,
    decide,
    decide_inbound,
    disclosure_stream,
    inbound_stream,
    made_under,
    plan,
    prove_withdrawal,
    refused,
    released_under,
    withdrawal_in,
)
from expensura_sharing_gateway.partner_auth.domain import Partner
from expensura_sharing_gateway.partners import store as partners_store
from expensura_sharing_gateway.partners.domain import INBOUND_SCOPE, Agreement, categories_of
from expensura_sharing_gateway.settings import gateway_settings


@dataclass(frozen=True)
class Disclosure:
    disclosure_id: UUID
    subject_id: str
    purpose: Purpose
    data: dict[str, str | None]
    decision_id: UUID
    basis: dict[str, Any]


def _as_partner(partner: Partner) -> Actor:
    return Actor(kind=ActorKind.PARTNER, id=partner.partner_id)


async def _agreements(rt: ServiceRuntime, partner_id: str) -> list[Agreement]:
    async with rt.engine.connect() as conn:
        return await partners_store.agreements_of(conn, partner_id)


async def _refuse(
    rt: ServiceRuntime,
    partner: Partner,
    ask: DisclosureAsk,
    event: DisclosureRefused,
    code: RefusalCode,
) -> Refused:
    """Commit the refusal (row and event), then count it; the caller raises what this
    returns."""
    async with rt.engine.begin() as conn:
        await store.add(
            conn,
            rt.mapper.cipher,
            DisclosureRecord(
                disclosure_id=event.disclosure_id,
                subject_id=ask.subject_id,
                partner_id=partner.partner_id,
                purpose=ask.purpose.value,
                fields=event.fields,
                outcome=REFUSED,
                reason=event.reason,
                ground=None,
                decision_id=event.decision_id,
                case_reference=ask.case_reference,
                at=utcnow(),
            ),
        )
        # Refusals are facts about the partner's request, recorded whatever the subject's
        # state: the purpose is enforcing security, not using the subject's data.
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=disclosure_stream(event.disclosure_id),
                    subject_id=ask.subject_id,
                    actor=_as_partner(partner),
                    purpose=Purpose.SECURITY,
                )
            ],
        )
    DISCLOSURES_REFUSED.labels(partner=partner.partner_id, reason=code.value).inc()
    return Refused(event.reason, event.disclosure_id)


async def _case_subject(rt: ServiceRuntime, ask: DisclosureAsk) -> str | None:
    """Whose open dispute the named case is (from loans' events), if the purpose needs it."""
    if ask.purpose not in KNOWN_CASE_REQUIRED or not ask.case_reference:
        return None
    async with rt.engine.connect() as conn:
        return await store.case_subject(conn, ask.case_reference)


async def disclose(rt: ServiceRuntime, partner: Partner, ask: DisclosureAsk) -> Disclosure:
    """A subject's fields for a partner, for a purpose. Raises OutOfScope (nothing
    recorded), Refused (the refusal committed) or DependencyDown (nothing disclosed)."""
    check_scope(partner, ask.purpose.value)
    disclosure_id, now = uuid4(), utcnow()
    try:
        planned = plan(
            ask,
            partner.kind,
            await _agreements(rt, partner.partner_id),
            now,
            case_subject=await _case_subject(rt, ask),
        )
    except DisclosureRefusal as exc:
        raise await _refuse(
            rt,
            partner,
            ask,
            refused(disclosure_id, partner.partner_id, ask, str(exc), None),
            exc.code,
        ) from None
    urls, timeout = rt.settings.service_urls, gateway_settings(rt).dependency_timeout_seconds
    decision = await clients.decide(
        urls,
        ask.subject_id,
        ask.purpose,
        categories_of(planned.fields),
        partner.partner_id,
        caller=rt.service_identity,
        fields=list(planned.fields),
        timeout=timeout,
    )
    event = decide(
        disclosure_id, partner.partner_id, ask, planned, decision, client_id=partner.client_id
    )
    if isinstance(event, DisclosureRefused):
        raise await _refuse(rt, partner, ask, event, RefusalCode.CONSENT)
    values = await clients.disclosable_values(
        urls,
        ask.subject_id,
        planned.fields,
        decision.decision_id,
        partner.partner_id,
        caller=rt.service_identity,
        timeout=timeout,
    )
    ground = decision.basis.legal_basis()
    async with rt.engine.begin() as conn:
        await store.add(
            conn,
            rt.mapper.cipher,
            DisclosureRecord(
                disclosure_id=disclosure_id,
                subject_id=ask.subject_id,
                partner_id=partner.partner_id,
                purpose=ask.purpose.value,
                fields=planned.fields,
                outcome=DISCLOSED,
                reason=decision.reason,
                ground=ground.ground.value,
                decision_id=decision.decision_id,
                case_reference=ask.case_reference,
                at=now,
            ),
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=disclosure_stream(disclosure_id),
                    subject_id=ask.subject_id,
                    actor=_as_partner(partner),
                    purpose=ask.purpose,
                    legal_basis=ground,
                )
            ],
        )
    DISCLOSURES.labels(partner=partner.partner_id, purpose=ask.purpose.value).inc()
    return Disclosure(
        disclosure_id=disclosure_id,
        subject_id=ask.subject_id,
        purpose=ask.purpose,
        data={f: values.get(f) for f in planned.fields},
        decision_id=decision.decision_id,
        basis=event.basis,
    )


async def accept_inbound(rt: ServiceRuntime, partner: Partner, offer: InboundOffer) -> None:
    """Data a partner offers about a subject (COL-4). Raises OutOfScope, Refused (the
    refusal recorded) or DependencyDown (nothing stored)."""
    check_scope(partner, INBOUND_SCOPE)
    refusal: str | None = None
    decision: DecisionOut | None = None
    agreement: Agreement | None = None
    try:
        agreement = covering_agreement(
            await _agreements(rt, partner.partner_id), offer.purpose, utcnow(), inbound=True
        )
        decision = await clients.decide(
            rt.settings.service_urls,
            offer.subject_id,
            offer.purpose,
            [offer.category.value],
            partner.partner_id,
            caller=rt.service_identity,
            timeout=gateway_settings(rt).dependency_timeout_seconds,
        )
    except DisclosureRefusal as exc:
        refusal = str(exc)
    event = decide_inbound(partner.partner_id, offer, agreement, decision, refusal)
    accepted = not isinstance(event, InboundDataRefused)
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=inbound_stream(offer.subject_id),
                    subject_id=offer.subject_id,
                    actor=_as_partner(partner),
                    # a refusal is about the partner's request (security), not the subject
                    purpose=offer.purpose if accepted else Purpose.SECURITY,
                    legal_basis=(
                        decision.basis.legal_basis() if accepted and decision is not None else None
                    ),
                )
            ],
        )
    if isinstance(event, InboundDataRefused):
        raise Refused(event.reason)


async def disclosures_of(rt: ServiceRuntime, subject_id: str) -> list[DisclosureRecord]:
    """Every disclosure of the subject's data and every refused request, oldest first."""
    async with rt.engine.connect() as conn:
        return await store.disclosures_of(conn, rt.mapper.cipher, subject_id)


async def prove_no_disclosure_after_withdrawal(
    rt: ServiceRuntime, subject_id: str, consent_id: str
) -> WithdrawalProof:
    """From consent's log (the withdrawal), the gateway's own log (the disclosures under
    that consent) and identity's log (every release of values under it, by whatever path
    it was asked): what the logs show, not what the tables say."""
    urls = rt.settings.service_urls
    withdrawn_at = None
    async for record in clients.log_records(urls["consent"], "consent", rt.service_identity):
        withdrawn_at = withdrawal_in(record, subject_id, consent_id) or withdrawn_at
    made = []
    async with rt.engine.connect() as conn:
        async for record in store.own_log(conn):
            if (found := made_under(record, subject_id, consent_id)) is not None:
                made.append(found)
    async for record in clients.log_records(urls["identity"], "identity", rt.service_identity):
        if (released := released_under(record, subject_id, consent_id)) is not None:
            made.append(released)
    return prove_withdrawal(subject_id, consent_id, withdrawn_at, made)


async def seal_legacy_case_references(
    rt: ServiceRuntime, stop: asyncio.Event, batch: int = 100
) -> None:
    """A worker: seal the case references stored in plaintext before sealing
    (sharing_0002), then stop; nothing to do once every row is sealed."""
    while not stop.is_set():
        async with rt.engine.begin() as conn:
            done = await store.seal_legacy_case_references(conn, rt.mapper.cipher, batch)
        if done < batch:
            return
