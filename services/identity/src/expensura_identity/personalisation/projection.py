"""The personalisation profile as a read model (USE-5): built from the user's own sign-in
events (when they use the app), so the app can adapt; started by `consent.ConsentGiven` for
personalisation and removed, row and all, by `consent.ConsentWithdrawn` or
`consent.ConsentExpired` for it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.consent import ConsentExpired, ConsentGiven, ConsentWithdrawn
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_identity.personalisation import store
from expensura_identity.personalisation.domain import ProfileChange, profile_change
from expensura_identity.tables import personalisation_profiles


class PersonalisationProfiles(Projection):
    name = "personalisation-profiles"
    sources = ("identity", "consent")
    tables = (personalisation_profiles,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        p, subject = event.payload, event.subject_id
        if subject is None:
            return
        change = profile_change(p)
        if change is ProfileChange.START and isinstance(p, ConsentGiven):
            await store.start(conn, subject, p.consent_id, event.occurred_at)
        elif change is ProfileChange.END and isinstance(p, ConsentWithdrawn | ConsentExpired):
            await store.end(conn, subject, p.consent_id)
        elif change is ProfileChange.FEED:
            await store.count_sign_in(conn, subject, event.occurred_at)
