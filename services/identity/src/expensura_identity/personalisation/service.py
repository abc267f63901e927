"""The user's personalisation profile, if they consented to one."""

from __future__ import annotations

from expensura_events.envelope import Actor
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_identity.personalisation import store
from expensura_identity.personalisation.domain import (
    PROFILE_CATEGORIES,
    PROFILE_FIELDS,
    NoProfile,
)
from expensura_identity.personalisation.store import ProfileRecord


async def my_profile(rt: ServiceRuntime, subject_id: str) -> ProfileRecord:
    """The profile, read and recorded. Raises NoProfile."""
    async with rt.engine.begin() as conn:
        found = await store.profile(conn, subject_id)
        if found is None:
            raise NoProfile(subject_id)
        await rt.record_access(
            conn,
            subject_id=subject_id,
            actor=Actor(kind=ActorKind.USER, id=subject_id),
            purpose=Purpose.PERSONALISATION,
            fields=list(PROFILE_FIELDS),
            categories=list(PROFILE_CATEGORIES),
        )
    return found
