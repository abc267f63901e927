"""Notification-contact use cases: so far, the operator's check."""

from __future__ import annotations

from expensura_events.runtime import ServiceRuntime
from expensura_incident.contacts import store
from expensura_incident.contacts.domain import ContactCheck, UnknownSubject


async def contact_check(rt: ServiceRuntime, subject_id: str) -> ContactCheck:
    """Raises UnknownSubject."""
    async with rt.engine.connect() as conn:
        found = await store.check(conn, subject_id)
    if found is None:
        raise UnknownSubject(subject_id)
    return found
