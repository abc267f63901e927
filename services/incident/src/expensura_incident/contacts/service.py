"""Notification-contact use cases: keeping a subject's contacts sealed, and the operator's
checks."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.cipher import LOOKUP_HMAC
from expensura_events.runtime import ServiceRuntime
from expensura_events.sealing import place, seal, unseal
from expensura_incident.contacts import store
from expensura_incident.contacts.domain import (
    ContactCheck,
    ContactUpdate,
    PreferencesUpdate,
    UnknownSubject,
    email_hmac,
    email_matches,
)
from expensura_incident.tables import notification_contacts


async def contact_hmac_key(rt: ServiceRuntime) -> bytes:
    """Incident's key for comparing addresses: its own look-up secret in the key store (only
    incident's role can read it), so the digest is useless without it, and a master-key
    rotation re-wraps the secret without changing it (the read model stays valid)."""
    return await rt.secrets.get(LOOKUP_HMAC)


def where(subject_id: str) -> str:
    return place(notification_contacts.name, subject_id)


async def keep(rt: ServiceRuntime, conn: AsyncConnection, update: ContactUpdate) -> None:
    """Store the update's values sealed with the subject's key, and the e-mail's digest."""
    sealed = await seal(
        rt.mapper.cipher, update.subject_id, where(update.subject_id), update.values
    )
    email = update.values.get("email")
    digest = None if email is None else email_hmac(await contact_hmac_key(rt), email)
    await store.apply_update(conn, update, sealed, digest)


async def keep_preferences(
    rt: ServiceRuntime, conn: AsyncConnection, update: PreferencesUpdate
) -> None:
    """Store the channel order, and the push token and mailing address sealed."""
    sealed = await seal(
        rt.mapper.cipher, update.subject_id, where(update.subject_id), update.values
    )
    await store.apply_preferences(conn, update, sealed)


async def contacts_of(rt: ServiceRuntime, subject_id: str) -> dict[str, Any]:
    """The subject's contacts opened (for sending a notice): e-mail, phone, push token and
    mailing address, None where unknown; raises UnknownSubject."""
    async with rt.engine.connect() as conn:
        boxes = await store.sealed_values(conn, subject_id)
    if boxes is None:
        raise UnknownSubject(subject_id)
    return await unseal(rt.mapper.cipher, subject_id, where(subject_id), boxes)


async def notice_channels_of(rt: ServiceRuntime, subject_id: str) -> list[NoticeChannel] | None:
    """The channel order the subject chose for notices; None: no choice (or unknown)."""
    async with rt.engine.connect() as conn:
        return await store.notice_channels(conn, subject_id)


async def notice_languages_of(rt: ServiceRuntime, subject_ids: list[str]) -> dict[str, str]:
    """The language each subject reads notices in, for those who gave one (others: none)."""
    async with rt.engine.connect() as conn:
        return await store.notice_languages(conn, subject_ids)


async def contact_check(rt: ServiceRuntime, subject_id: str) -> ContactCheck:
    """Raises UnknownSubject."""
    async with rt.engine.connect() as conn:
        found = await store.check(conn, subject_id)
    if found is None:
        raise UnknownSubject(subject_id)
    return found


async def email_check(rt: ServiceRuntime, subject_id: str, email: str) -> bool:
    """Whether notices would go to this address; raises UnknownSubject."""
    found = await contact_check(rt, subject_id)
    return email_matches(await contact_hmac_key(rt), found.email_hmac, email)
