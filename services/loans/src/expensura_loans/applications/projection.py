"""Loans learns who passed real-name verification from identity's events (USE-1)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity_verification import RealNameVerified
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection

metadata = MetaData()

verified_subjects = Table(
    "verified_subjects",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("request_id", Uuid, nullable=False),
    Column("verified_at", DateTime(timezone=True), nullable=False),
)

loan_applications = Table(
    "loan_applications",
    metadata,
    Column("application_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("amount_cents", Text, nullable=False),
    Column("term_months", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


class VerifiedSubjects(Projection):
    name = "verified-subjects"
    sources = ("identity",)
    tables = (verified_subjects,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if isinstance(event.payload, RealNameVerified) and event.subject_id is not None:
            await conn.execute(
                insert(verified_subjects)
                .values(
                    subject_id=event.subject_id,
                    request_id=event.payload.request_id,
                    verified_at=event.occurred_at,
                )
                .on_conflict_do_nothing()
            )
