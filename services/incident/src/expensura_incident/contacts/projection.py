"""Where to reach each subject when a breach notice must go out (SEC-5, USE-10), and on
which channels they want notices (identity's `NotificationPreferencesSet`).

The incident service keeps current contact details because sending notices is its job; it
follows identity's sign-ups and corrections (RGT-2) with the same fold identity uses, keeps
them sealed with the subject's key (SEC-1: crypto-shredding reaches this copy too), and
erasure purges the row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.runtime import ServiceRuntime
from expensura_incident.contacts import service
from expensura_incident.contacts.domain import contact_update, preferences_update
from expensura_incident.tables import notification_contacts


class NotificationContacts(Projection):
    name = "notification-contacts"
    sources = ("identity",)
    tables = (notification_contacts,)
    opens_personal_data = True  # it keeps the contacts (sealed again under incident's key)

    def bind(self, runtime: Any) -> None:
        self.rt: ServiceRuntime = runtime  # its key store seals what the row keeps

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        update = contact_update(event)
        if update is not None:
            await service.keep(self.rt, conn, update)
        preferences = preferences_update(event)
        if preferences is not None:
            await service.keep_preferences(self.rt, conn, preferences)
