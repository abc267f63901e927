"""Stopping processing and erasing a subject, in every service, driven by identity's events.

Every service runs the `subject-lifecycle` projection over identity's log. When identity
records `rights.ProcessingStopped`, the service notes the restriction and from then on
refuses to use the subject's data except for legal compliance and security. When identity
records `rights.ErasureRequested`, the service purges the subject from its read models and
its own state and records `rights.ErasureConfirmed` in its log, in the same transaction,
so the confirmation exists exactly when the purge happened.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.platform import RetentionHoldEnded, SubjectKeyDestroyed
from expensura_events.catalog.rights import ErasureConfirmed, ErasureRequested, ProcessingStopped
from expensura_events.envelope import Actor, EventEnvelope, LegalBasis, key_owner, utcnow
from expensura_events.projections import Projection, lock_against_rebuild, subject_lock_key
from expensura_events.tables import event_log, subject_restrictions
from expensura_events.vocabulary import LegalGround, Purpose

if TYPE_CHECKING:
    from expensura_events.runtime import ServiceRuntime

LIFECYCLE = "subject-lifecycle"
# What a service may still do with a stopped subject: keep the law's records, and security.
ALLOWED_AFTER_STOP = frozenset({Purpose.LEGAL_COMPLIANCE, Purpose.SECURITY})
ERASURE_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="RUL-2/RGT-3 erasure")

EraseHook = Callable[[AsyncConnection, str], Awaitable[dict[str, int]]]


class ProcessingRestricted(Exception):
    """The subject cancelled their account: their data may not be used for this purpose."""

    def __init__(self, subject_id: str, state: str) -> None:
        super().__init__(f"processing of subject {subject_id}'s data has stopped ({state})")
        self.subject_id, self.state = subject_id, state


async def restriction(conn: AsyncConnection, subject_id: str) -> str | None:
    """`processing-stopped`, `erased`, or None."""
    state = (
        await conn.execute(
            select(subject_restrictions.c.state).where(
                subject_restrictions.c.subject_id == subject_id
            )
        )
    ).scalar_one_or_none()
    return state


async def check_allowed(conn: AsyncConnection, subject_id: str, purpose: Purpose) -> None:
    if purpose in ALLOWED_AFTER_STOP:
        return
    state = await restriction(conn, subject_id)
    if state is not None:
        raise ProcessingRestricted(subject_id, state)


async def restrict(conn: AsyncConnection, subject_id: str, state: str, request_id: UUID) -> None:
    stmt = insert(subject_restrictions).values(
        subject_id=subject_id, state=state, request_id=request_id, since=utcnow()
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["subject_id"],
            set_={"state": stmt.excluded.state, "request_id": stmt.excluded.request_id},
        )
    )


class SubjectLifecycle(Projection):
    """Follows identity's rights events in every service (see the module docstring)."""

    name = LIFECYCLE
    sources = ("identity",)
    tables = ()  # never emptied by a rebuild: it is what keeps erased subjects out
    follows_erased_subjects = True

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        payload: Any = event.payload
        subject = event.subject_id
        if subject is None:
            return
        if isinstance(payload, ProcessingStopped):
            if await restriction(conn, subject) != "erased":
                await restrict(conn, subject, "processing-stopped", payload.request_id)
        elif isinstance(payload, ErasureRequested):
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": subject_lock_key(subject)}
            )
            await restrict(conn, subject, "erased", payload.request_id)
            await self._erase(conn, subject, payload.request_id, event)

    async def _erase(
        self, conn: AsyncConnection, subject: str, request_id: UUID, cause: EventEnvelope
    ) -> None:
        stream = f"erasure-{request_id}"
        if await self.rt.store.stream_version(conn, stream) > 0:
            return  # confirmed before (a retried request, or a rebuild): once is enough
        purged: dict[str, int] = {}
        for make in self.rt.definition.projections:
            projection = make()
            await lock_against_rebuild(conn, projection.name)  # a rebuild commits first
            for table, n in (await projection.purge_subject(conn, subject)).items():
                purged[table] = purged.get(table, 0) + n
        if self.rt.definition.erase_subject is not None:
            purged |= await self.rt.definition.erase_subject(conn, subject)
        retained = await held_records(self.rt, conn, subject)
        await self.rt.append(
            conn,
            [
                self.rt.envelope(
                    ErasureConfirmed(
                        request_id=request_id,
                        service=self.rt.name,
                        purged=purged,
                        retained=[f"{hold}: {n} log records" for hold, n in retained.items()],
                    ),
                    stream_id=stream,
                    subject_id=subject,
                    actor=Actor.system(self.rt.name),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                    legal_basis=ERASURE_BASIS,
                    correlation_id=cause.correlation_id,
                    causation_id=cause.event_id,
                )
            ],
            expected_version=0,
        )


async def held_records(rt: ServiceRuntime, conn: AsyncConnection, subject: str) -> dict[str, int]:
    """The subject's log records under a retention hold whose key still exists: they stay
    readable, for legal compliance only, until the hold ends."""
    rows = await conn.execute(select(event_log.c.record).where(event_log.c.subject_id == subject))
    holds: dict[str, int] = {}
    for (record,) in rows:
        hold = json.loads(record).get("retention_hold")
        if hold is not None:
            holds[hold] = holds.get(hold, 0) + 1
    keys = rt.mapper.cipher.keys
    return {h: n for h, n in holds.items() if await keys.get(key_owner(subject, h)) is not None}


async def release_hold(rt: ServiceRuntime, subject: str, hold: str, reason: str) -> bool:
    """End a retention hold: destroy the hold's key and record it. Returns False if the key
    was already gone."""
    destroyed = await rt.mapper.cipher.keys.destroy(key_owner(subject, hold))
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    RetentionHoldEnded(hold=hold, reason=reason),
                    stream_id=f"retention-{subject}-{hold}",
                    subject_id=subject,
                    actor=Actor.system(rt.name),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                    legal_basis=ERASURE_BASIS,
                )
            ],
        )
    return destroyed


async def shred_subject(rt: ServiceRuntime, subject: str, reason: str, actor: Actor) -> bool:
    """Destroy the subject's key, so every copy of their personal fields reads as redacted,
    and record `platform.SubjectKeyDestroyed` once. Both steps are idempotent, so a caller
    that crashed between them finishes by calling again. True if the key was destroyed now."""
    destroyed = await rt.mapper.cipher.keys.destroy(subject)
    stream = f"subject-key-{subject}"
    async with rt.engine.begin() as conn:
        if await rt.store.stream_version(conn, stream) == 0:
            await rt.append(
                conn,
                [
                    rt.envelope(
                        SubjectKeyDestroyed(subject_id=subject, reason=reason),
                        stream_id=stream,
                        subject_id=subject,
                        actor=actor,
                        purpose=Purpose.LEGAL_COMPLIANCE,
                        legal_basis=ERASURE_BASIS,
                    )
                ],
                expected_version=0,
            )
    return destroyed
