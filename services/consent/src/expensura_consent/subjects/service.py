"""The subject index's use cases: how many subjects consent knows, and one of them."""

from __future__ import annotations

from expensura_consent.subjects import store
from expensura_consent.subjects.domain import KnownSubject, SubjectNotKnown
from expensura_events.runtime import ServiceRuntime


async def count(rt: ServiceRuntime) -> int:
    async with rt.engine.connect() as conn:
        return await store.count(conn)


async def get(rt: ServiceRuntime, subject_id: str) -> KnownSubject:
    """Raises SubjectNotKnown."""
    async with rt.engine.connect() as conn:
        found = await store.get(conn, subject_id)
    if found is None:
        raise SubjectNotKnown(subject_id)
    return found
