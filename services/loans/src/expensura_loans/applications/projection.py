"""Loans learns from identity's events who passed real-name verification (USE-1's gate) and
who proved they receive mail at their e-mail (the sign-up's proof)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity import EmailOwnershipProven
from expensura_events.catalog.identity_verification import RealNameVerified
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_loans.applications import store
from expensura_loans.tables import proven_emails, verified_subjects


class VerifiedSubjects(Projection):
    name = "verified-subjects"
    sources = ("identity",)
    tables = (verified_subjects,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if isinstance(event.payload, RealNameVerified) and event.subject_id is not None:
            await store.record_verified(
                conn, event.subject_id, event.payload.request_id, event.occurred_at
            )


class ProvenEmails(Projection):
    name = "proven-emails"
    sources = ("identity",)
    tables = (proven_emails,)
    event_types = frozenset({"identity.EmailOwnershipProven"})

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if isinstance(event.payload, EmailOwnershipProven) and event.subject_id is not None:
            await store.record_email_proven(conn, event.subject_id, event.occurred_at)
