"""The consent service's index of data subjects, projected from identity's log.

Consent needs to know every subject (to notify each of a new policy version exactly once)
without reading identity's tables; it learns them from identity's events.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.subjects import store
from expensura_consent.tables import known_subjects
from expensura_events.catalog.identity import AccountOpened
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.vocabulary import CollectionChannel

__all__ = ["KnownSubjects", "known_subjects"]


class KnownSubjects(Projection):
    name = "known-subjects"
    sources = ("identity",)
    tables = (known_subjects,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if event.subject_id is None:
            return
        opened = event.payload if isinstance(event.payload, AccountOpened) else None
        await store.seen(
            conn,
            event.subject_id,
            event.occurred_at,
            # CollectionChannel(...): after crypto-shredding the payload is built unvalidated
            # and the channel comes back as its plain string
            opened_on=CollectionChannel(opened.channel).value if opened else None,
        )
