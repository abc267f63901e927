"""The consent service's index of data subjects, projected from identity's log.

Consent needs to know every subject (to notify each of a new policy version exactly once)
without reading identity's tables; it learns them from identity's events.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity import AccountOpened
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.vocabulary import CollectionChannel

metadata = MetaData()

known_subjects = Table(
    "known_subjects",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("account_opened_at", DateTime(timezone=True), nullable=True),
    Column("channel", Text, nullable=True),
    # How many identity events concern the subject: applying one twice would show here.
    Column("identity_events", Integer, nullable=False),
    Column("last_event_at", DateTime(timezone=True), nullable=False),
)


class KnownSubjects(Projection):
    name = "known-subjects"
    sources = ("identity",)
    tables = (known_subjects,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if event.subject_id is None:
            return
        opened = event.payload if isinstance(event.payload, AccountOpened) else None
        values = {
            "subject_id": event.subject_id,
            "account_opened_at": event.occurred_at if opened else None,
            # CollectionChannel(...): after crypto-shredding the payload is built unvalidated
            # and the channel comes back as its plain string
            "channel": CollectionChannel(opened.channel).value if opened else None,
            "identity_events": 1,
            "last_event_at": event.occurred_at,
        }
        stmt = insert(known_subjects).values(**values)
        update = {
            "identity_events": known_subjects.c.identity_events + 1,
            "last_event_at": stmt.excluded.last_event_at,
        }
        if opened:
            update |= {
                "account_opened_at": stmt.excluded.account_opened_at,
                "channel": stmt.excluded.channel,
            }
        await conn.execute(stmt.on_conflict_do_update(index_elements=["subject_id"], set_=update))
