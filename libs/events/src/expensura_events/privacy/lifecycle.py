"""Stopping processing and erasing a subject, in every service, driven by identity's events.

Every service runs the `subject-lifecycle` projection over identity's log. When identity
records `rights.ProcessingStopped`, the service notes the restriction and from then on
refuses to use the subject's data except for legal compliance and security. When identity
records `rights.ErasureRequested`, the service purges the subject from its read models and
its own state and records `rights.ErasureConfirmed` in its log, in the same transaction,
so the confirmation exists exactly when the purge happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.rights import (
    ErasureConfirmed,
    ErasureRequested,
    HeldEntry,
    ProcessingStopped,
)
from expensura_events.envelope import Actor, EventEnvelope
from expensura_events.obligations import enforces
from expensura_events.privacy.ports import ServiceLog
from expensura_events.privacy.restrictions import Restriction, restrict, restriction
from expensura_events.privacy.shredding import ERASURE_BASIS, held_records
from expensura_events.projections import Projection, lock_against_rebuild, subject_lock_key
from expensura_events.streams import erasure_stream
from expensura_events.vocabulary import Purpose

LIFECYCLE = "subject-lifecycle"

EraseHook = Callable[[AsyncConnection, str], Awaitable[dict[str, int]]]
# Place the subject's legal retention holds (after the erase hook, in the erasure's
# transaction) and say when each ends: the confirmation says until when each is held.
PlaceHoldsHook = Callable[[ServiceLog, AsyncConnection, str], Awaitable[Mapping[str, datetime]]]


@enforces("RUL-2", "RGT-3")
class SubjectLifecycle(Projection):
    """Follows identity's rights events in every service (see the module docstring).

    It is given what an erasure touches: the service's log (`rt`), the factories of its
    read models (each purged through `Projection.purge_subject`), the service's hook
    that erases the subject from its own state, and the one that places the legal retention
    holds on what the law makes it keep (their records stay readable until they end)."""

    name = LIFECYCLE
    sources = ("identity",)
    tables = ()  # never emptied by a rebuild: it is what keeps erased subjects out
    follows_erased_subjects = True

    def __init__(
        self,
        rt: ServiceLog,
        projections: Sequence[Callable[[], Projection]] = (),
        erase_subject: EraseHook | None = None,
        place_holds: PlaceHoldsHook | None = None,
    ) -> None:
        self.rt = rt
        self.projections = projections
        self.erase_subject = erase_subject
        self.place_holds = place_holds

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        payload: Any = event.payload
        subject = event.subject_id
        if subject is None:
            return
        if isinstance(payload, ProcessingStopped):
            if await restriction(conn, subject) != Restriction.ERASED:
                await restrict(conn, subject, Restriction.PROCESSING_STOPPED, payload.request_id)
        elif isinstance(payload, ErasureRequested):
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": subject_lock_key(subject)}
            )
            await restrict(conn, subject, Restriction.ERASED, payload.request_id)
            await self._erase(conn, subject, payload.request_id, event)

    async def _erase(
        self, conn: AsyncConnection, subject: str, request_id: UUID, cause: EventEnvelope
    ) -> None:
        stream = erasure_stream(request_id)
        if await self.rt.store.stream_version(conn, stream) > 0:
            return  # confirmed before (a retried request, or a rebuild): once is enough
        purged: dict[str, int] = {}
        for make in self.projections:
            projection = make()
            await lock_against_rebuild(conn, projection.name)  # a rebuild commits first
            for table, n in (await projection.purge_subject(conn, subject)).items():
                purged[table] = purged.get(table, 0) + n
        if self.erase_subject is not None:
            purged |= await self.erase_subject(conn, subject)
        retained = await held_records(self.rt, conn, subject)
        ends: Mapping[str, datetime] = {}
        if self.place_holds is not None:
            ends = await self.place_holds(self.rt, conn, subject)
        await self.rt.append(
            conn,
            [
                self.rt.envelope(
                    ErasureConfirmed(
                        request_id=request_id,
                        service=self.rt.name,
                        purged=purged,
                        retained=[
                            str(HeldEntry(hold, n, ends[hold].date() if hold in ends else None))
                            for hold, n in sorted(retained.items())
                        ],
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
