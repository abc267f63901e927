"""Use cases of transfers (TRF-1) and public disclosure (PUB-1). The evidence rules are the
domain's, applied here whoever calls. Public disclosure asks consent and identity through
the disclosures feature's clients (the same two calls a partner disclosure makes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from expensura_events.envelope import Actor
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_sharing_gateway.disclosures import clients
from expensura_sharing_gateway.partners.domain import categories_of
from expensura_sharing_gateway.settings import gateway_settings
from expensura_sharing_gateway.transfers.domain import (
    PUBLIC,
    SuccessorTransfer,
    check_case,
    decide_public,
    decide_transfer,
    public_fields,
    public_stream,
    transfer_stream,
)


@dataclass(frozen=True)
class RecordedTransfer:
    transfer_id: UUID
    reconsent_required: bool


@dataclass(frozen=True)
class PublicDisclosure:
    disclosure_id: UUID
    decision_id: UUID
    basis: dict[str, Any]
    data: dict[str, str | None]


async def record_transfer(
    rt: ServiceRuntime, transfer: SuccessorTransfer, by: Actor
) -> RecordedTransfer:
    """A merger or acquisition: raises MissingEvidence (TRF-1) before anything is recorded."""
    transfer_id = uuid4()
    event, basis = decide_transfer(transfer_id, transfer)
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=transfer_stream(transfer_id),
                    subject_id=None,
                    actor=by,
                    purpose=Purpose.LEGAL_COMPLIANCE,
                    legal_basis=basis,
                )
            ],
        )
    return RecordedTransfer(transfer_id, event.reconsent_required)


async def disclose_publicly(
    rt: ServiceRuntime,
    subject_id: str,
    asked: list[str],
    purpose: Purpose,
    case_reference: str,
    by: Actor,
) -> PublicDisclosure:
    """Raises PublicRefused (PUB-1) or DependencyDown; nothing is disclosed then."""
    fields = public_fields(asked)
    check_case(case_reference)
    urls, timeout = rt.settings.service_urls, gateway_settings(rt).dependency_timeout_seconds
    decision = await clients.decide(
        urls,
        subject_id,
        purpose,
        categories_of(fields),
        PUBLIC,
        caller=rt.service_identity,
        fields=list(fields),
        timeout=timeout,
    )
    disclosure_id = uuid4()
    event = decide_public(disclosure_id, fields, decision, case_reference)
    values = await clients.disclosable_values(
        urls,
        subject_id,
        fields,
        decision.decision_id,
        PUBLIC,
        caller=rt.service_identity,
        timeout=timeout,
    )
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=public_stream(disclosure_id),
                    subject_id=subject_id,
                    actor=by,
                    purpose=purpose,
                    legal_basis=decision.basis.legal_basis(),
                )
            ],
        )
    return PublicDisclosure(disclosure_id, decision.decision_id, event.basis, values)
