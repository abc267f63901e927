"""Where to reach each subject when a breach notice must go out (SEC-5, USE-10).

The incident service keeps current contact details because sending notices is its job; it
follows identity's sign-ups and corrections (RGT-2) with the same fold identity uses, and
erasure purges the row.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_incident.contacts import store
from expensura_incident.contacts.domain import contact_update
from expensura_incident.tables import notification_contacts


class NotificationContacts(Projection):
    name = "notification-contacts"
    sources = ("identity",)
    tables = (notification_contacts,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        update = contact_update(event)
        if update is not None:
            await store.apply_update(conn, update)
