"""Notification contacts in SQL: sealed values and the e-mail's keyed digest, no plaintext."""

from __future__ import annotations

from typing import Any

from sqlalchemy import null, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_incident.contacts.domain import ContactCheck, ContactUpdate, PreferencesUpdate
from expensura_incident.tables import notification_contacts


async def apply_update(
    conn: AsyncConnection,
    update: ContactUpdate,
    sealed: dict[str, Any],
    email_digest: str | None,
) -> None:
    """Upsert the subject's row: the fields the update sets (`sealed`, by field name)
    replace the stored ones, the others stay; the row always records the latest contact
    event."""
    values: dict[str, Any] = {f"{name}_sealed": box for name, box in sealed.items()}
    if email_digest is not None:
        values["email_hmac"] = email_digest
    stmt = insert(notification_contacts).values(
        subject_id=update.subject_id,
        updated_from_event=update.event_id,
        updated_at=update.at,
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


async def apply_preferences(
    conn: AsyncConnection, update: PreferencesUpdate, sealed: dict[str, Any]
) -> None:
    """Upsert the subject's channel order, and the push token and mailing address: sealed
    where given, NULL where the event cleared them, unchanged where they read as redacted."""
    values: dict[str, Any] = {
        f"{name}_sealed": sealed[name] if name in sealed else null() for name in update.values
    }
    values["notice_channels"] = [c.value for c in update.channels]
    values["notice_language"] = update.language
    stmt = insert(notification_contacts).values(
        subject_id=update.subject_id,
        updated_from_event=update.event_id,
        updated_at=update.at,
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


SEALED_FIELDS = ("email", "phone", "push_token", "mailing_address")


async def sealed_values(conn: AsyncConnection, subject_id: str) -> dict[str, Any] | None:
    """The subject's sealed boxes by field name (None where unknown), or None."""
    c = notification_contacts.c
    row = (
        await conn.execute(
            select(*(c[f"{name}_sealed"] for name in SEALED_FIELDS)).where(
                c.subject_id == subject_id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return {name: row._mapping[f"{name}_sealed"] for name in SEALED_FIELDS}


async def notice_channels(conn: AsyncConnection, subject_id: str) -> list[NoticeChannel] | None:
    """The channel order the subject chose; None if they made no choice (or are unknown)."""
    chosen = await conn.scalar(
        select(notification_contacts.c.notice_channels).where(
            notification_contacts.c.subject_id == subject_id
        )
    )
    return None if chosen is None else [NoticeChannel(name) for name in chosen]


async def notice_languages(conn: AsyncConnection, subject_ids: list[str]) -> dict[str, str]:
    """The language each of `subject_ids` reads notices in, for those who gave one."""
    c = notification_contacts.c
    found: dict[str, str] = {}
    for at in range(0, len(subject_ids), 5000):  # bounded IN lists
        rows = await conn.execute(
            select(c.subject_id, c.notice_language).where(
                c.subject_id.in_(subject_ids[at : at + 5000]), c.notice_language.is_not(None)
            )
        )
        found |= {r.subject_id: r.notice_language for r in rows}
    return found


async def check(conn: AsyncConnection, subject_id: str) -> ContactCheck | None:
    row = (
        await conn.execute(
            select(notification_contacts).where(notification_contacts.c.subject_id == subject_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return ContactCheck(
        subject_id=subject_id,
        email_hmac=row.email_hmac,
        phone_present=row.phone_sealed is not None,
        updated_from_event=row.updated_from_event,
        updated_at=row.updated_at,
        notice_channels=None
        if row.notice_channels is None
        else tuple(NoticeChannel(c) for c in row.notice_channels),
        push_token_present=row.push_token_sealed is not None,
        mailing_address_present=row.mailing_address_sealed is not None,
    )
