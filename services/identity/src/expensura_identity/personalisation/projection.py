"""A personalisation profile that exists only while the user consents to profiling (USE-5).

Built from the user's own sign-in events (when they use the app), so the app can adapt; it
is started by `consent.ConsentGiven` for personalisation and removed, row and all, by
`consent.ConsentWithdrawn` or `consent.ConsentExpired` for it.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, Uuid, delete, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.consent import ConsentExpired, ConsentGiven, ConsentWithdrawn
from expensura_events.catalog.identity import SignedIn
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.vocabulary import Purpose

metadata = MetaData()

personalisation_profiles = Table(
    "personalisation_profiles",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("consent_id", Uuid, nullable=False),
    Column("sign_ins", Integer, nullable=False),
    Column("usual_hour_utc", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class PersonalisationProfiles(Projection):
    name = "personalisation-profiles"
    sources = ("identity", "consent")
    tables = (personalisation_profiles,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        p, subject = event.payload, event.subject_id
        if subject is None:
            return
        t = personalisation_profiles
        if isinstance(p, ConsentGiven) and p.purpose is Purpose.PERSONALISATION:
            await conn.execute(
                insert(t)
                .values(
                    subject_id=subject,
                    consent_id=p.consent_id,
                    sign_ins=0,
                    updated_at=event.occurred_at,
                )
                .on_conflict_do_update(
                    index_elements=["subject_id"], set_={"consent_id": p.consent_id}
                )
            )
        elif isinstance(p, ConsentWithdrawn | ConsentExpired) and (
            p.purpose is Purpose.PERSONALISATION
        ):
            await conn.execute(
                delete(t).where(t.c.subject_id == subject, t.c.consent_id == p.consent_id)
            )
        elif isinstance(p, SignedIn) and p.principal_kind == "user":
            # Only a profile that consent started is updated; without one nothing is kept.
            await conn.execute(
                update(t)
                .where(t.c.subject_id == subject)
                .values(
                    sign_ins=t.c.sign_ins + 1,
                    usual_hour_utc=event.occurred_at.hour,
                    updated_at=event.occurred_at,
                )
            )
