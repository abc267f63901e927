"""Where to reach each subject when a breach notice must go out (SEC-5, USE-10).

The incident service keeps current contact details because sending notices is its job; it
follows identity's sign-ups and corrections (RGT-2), and erasure purges the row.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.envelope import REDACTED, EventEnvelope
from expensura_events.projections import Projection

metadata = MetaData()

notification_contacts = Table(
    "notification_contacts",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("email", Text, nullable=True),
    Column("phone", Text, nullable=True),
    Column("updated_from_event", Uuid, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class NotificationContacts(Projection):
    name = "notification-contacts"
    sources = ("identity",)
    tables = (notification_contacts,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        p = event.payload
        if not isinstance(p, AccountOpened | ContactDetailsCorrected) or event.subject_id is None:
            return
        # A value whose key was destroyed reads as the redaction marker: it is no address.
        values = {
            k: v
            for k, v in (("email", p.email), ("phone", p.phone))
            if v is not None and v != REDACTED
        }
        stmt = insert(notification_contacts).values(
            subject_id=event.subject_id,
            updated_from_event=event.event_id,
            updated_at=event.occurred_at,
            **values,
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["subject_id"],
                set_={
                    **{k: stmt.excluded[k] for k in values},
                    "updated_from_event": stmt.excluded.updated_from_event,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )
