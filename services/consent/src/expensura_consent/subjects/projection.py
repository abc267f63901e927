"""The consent service's index of data subjects, projected from identity's log.

Consent needs to know every subject (to notify each of a new policy version exactly once)
without reading identity's tables; it learns them from identity's events.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        await store.seen(conn, event.subject_id, event.occurred_at, opened_on=_opened_on(event))

    async def apply_many(self, conn: AsyncConnection, events: Sequence[EventEnvelope]) -> None:
        """Each subject's run of events folded as `seen` would apply them one by one, then
        one upsert per 5,000 subjects (a rebuild's batches)."""
        subjects: dict[str, store.Seen] = {}
        for event in events:
            if event.subject_id is None:
                continue
            s = subjects.get(event.subject_id)
            if s is None:
                s = subjects[event.subject_id] = store.Seen(0, event.occurred_at)
            s.events += 1
            s.last_event_at = event.occurred_at
            if (channel := _opened_on(event)) is not None:
                s.account_opened_at, s.channel = event.occurred_at, channel
        await store.seen_many(conn, subjects)


def _opened_on(event: EventEnvelope) -> str | None:
    """The channel, when the event is the account's opening."""
    if not isinstance(event.payload, AccountOpened):
        return None
    # CollectionChannel(...): after crypto-shredding the payload is built unvalidated and the
    # channel comes back as its plain string
    return CollectionChannel(event.payload.channel).value
