"""Collects every store's erasure confirmation; issues the certificate when all confirmed.

A process manager: it follows all five services' logs and, in the same transaction as the
confirmation that completes the set, records `rights.ErasureCertificateIssued`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.rights import ErasureCertificateIssued, ErasureConfirmed
from expensura_events.envelope import Actor, EventEnvelope, utcnow
from expensura_events.privacy.shredding import ERASURE_BASIS
from expensura_events.projections import Projection
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_identity.rights.domain import (
    ERASURE_PARTICIPANTS,
    CancellationState,
    missing_confirmations,
)
from expensura_identity.rights.tables import (
    cancellation_requests,
    erasure_certificates,
    erasure_confirmations,
)


class ErasureCertificates(Projection):
    name = "erasure-certificates"
    sources = ERASURE_PARTICIPANTS
    tables = ()  # the certificate is a record of what happened: a rebuild keeps it
    follows_erased_subjects = True

    rt: ServiceRuntime

    def bind(self, runtime: Any) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        payload = event.payload
        if not isinstance(payload, ErasureConfirmed) or event.subject_id is None:
            return
        await conn.execute(
            insert(erasure_confirmations)
            .values(
                request_id=payload.request_id,
                service=payload.service,
                confirmed_at=event.occurred_at,
                purged=payload.purged,
                retained=payload.retained,
                event_id=event.event_id,
            )
            .on_conflict_do_nothing()
        )
        confirmed = set(
            (
                await conn.execute(
                    select(erasure_confirmations.c.service).where(
                        erasure_confirmations.c.request_id == payload.request_id
                    )
                )
            ).scalars()
        )
        already = (
            await conn.execute(
                select(erasure_certificates.c.request_id).where(
                    erasure_certificates.c.request_id == payload.request_id
                )
            )
        ).first()
        if missing_confirmations(confirmed) or already is not None:
            return
        services = sorted(confirmed)
        [issued] = await self.rt.append(
            conn,
            [
                self.rt.envelope(
                    ErasureCertificateIssued(
                        request_id=payload.request_id, services=services, key_destroyed=True
                    ),
                    stream_id=f"cancellation-{payload.request_id}",
                    subject_id=event.subject_id,
                    actor=Actor.system("identity"),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                    legal_basis=ERASURE_BASIS,
                    causation_id=event.event_id,
                )
            ],
        )
        await conn.execute(
            erasure_certificates.insert().values(
                request_id=payload.request_id,
                subject_id=event.subject_id,
                issued_at=utcnow(),
                services=services,
                event_id=issued.event_id,
            )
        )
        await conn.execute(
            update(cancellation_requests)
            .where(cancellation_requests.c.request_id == payload.request_id)
            .values(state=CancellationState.CERTIFIED.value)
        )
