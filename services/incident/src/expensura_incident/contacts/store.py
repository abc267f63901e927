"""Notification contacts in SQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_incident.contacts.domain import ContactCheck, ContactUpdate, contact_check
from expensura_incident.tables import notification_contacts


async def apply_update(conn: AsyncConnection, update: ContactUpdate) -> None:
    """Upsert the subject's row: the fields the update sets replace the stored ones, the
    others stay; the row always records the latest contact event."""
    stmt = insert(notification_contacts).values(
        subject_id=update.subject_id,
        updated_from_event=update.event_id,
        updated_at=update.at,
        **update.values,
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["subject_id"],
            set_={
                **{k: stmt.excluded[k] for k in update.values},
                "updated_from_event": stmt.excluded.updated_from_event,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


async def check(conn: AsyncConnection, subject_id: str) -> ContactCheck | None:
    row = (
        await conn.execute(
            select(notification_contacts).where(notification_contacts.c.subject_id == subject_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return contact_check(subject_id, row.email, row.phone, row.updated_from_event, row.updated_at)
