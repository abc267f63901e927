"""The gateway learns from loans' events which balance disputes are open, and whose (USE-8):
a dispute-resolution disclosure must name one of its subject's cases (`domain.plan`).

Only the case reference's digest, the loan and the subject are kept: the reference and the
borrower's reason stay in loans' log, sealed (this projection opens no one's key)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.loans_servicing import BalanceDisputeOpened
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_sharing_gateway.disclosures import store
from expensura_sharing_gateway.tables import dispute_cases


class DisputeCases(Projection):
    name = "dispute-cases"
    sources = ("loans",)
    tables = (dispute_cases,)
    event_types = frozenset({BalanceDisputeOpened.event_type})

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if isinstance(event.payload, BalanceDisputeOpened) and event.subject_id is not None:
            await store.record_dispute_case(
                conn,
                event.payload.case_digest,
                event.subject_id,
                event.payload.loan_id,
                event.occurred_at,
            )
