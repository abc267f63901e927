"""Crypto-shredding (RGT-3) and legal retention holds.

Destroying a subject's data key makes every copy of their personal fields read as redacted,
in the log, in Kafka and in backups, while the stored bytes, and so the hash chain, stay as
they were. Records under a retention hold are sealed with the hold's own key: they stay
readable, for legal compliance only, until the hold ends and that key is destroyed too.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.platform import RetentionHoldEnded, SubjectKeyDestroyed
from expensura_events.envelope import Actor, LegalBasis, key_owner
from expensura_events.obligations import enforces
from expensura_events.privacy.ports import ServiceLog
from expensura_events.streams import retention_stream, subject_key_stream
from expensura_events.tables import event_log
from expensura_events.vocabulary import LegalGround, Purpose

ERASURE_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="RUL-2/RGT-3 erasure")


async def held_records(rt: ServiceLog, conn: AsyncConnection, subject: str) -> dict[str, int]:
    """The subject's log records under a retention hold whose key still exists: they stay
    readable, for legal compliance only, until the hold ends."""
    rows = await conn.execute(select(event_log.c.record).where(event_log.c.subject_id == subject))
    holds: dict[str, int] = {}
    for (record,) in rows:
        hold = json.loads(record).get("retention_hold")
        if hold is not None:
            holds[hold] = holds.get(hold, 0) + 1
    keys = rt.keys
    return {h: n for h, n in holds.items() if await keys.live(key_owner(subject, h))}


@enforces("RUL-2")
async def release_hold(rt: ServiceLog, subject: str, hold: str, reason: str) -> bool:
    """End a retention hold: destroy the hold's key and record `platform.RetentionHoldEnded`
    once. Both steps are idempotent (as `shred_subject`'s), so a caller that crashed between
    them finishes by calling again. Returns False if the key was already gone."""
    destroyed = await rt.keys.destroy(key_owner(subject, hold))
    stream = retention_stream(subject, hold)
    async with rt.engine.begin() as conn:
        if await rt.store.stream_version(conn, stream) == 0:
            await rt.append(
                conn,
                [
                    rt.envelope(
                        RetentionHoldEnded(hold=hold, reason=reason),
                        stream_id=stream,
                        subject_id=subject,
                        actor=Actor.system(rt.name),
                        purpose=Purpose.LEGAL_COMPLIANCE,
                        legal_basis=ERASURE_BASIS,
                    )
                ],
                expected_version=0,
            )
    return destroyed


@enforces("RUL-2", "RGT-3")
async def shred_subject(rt: ServiceLog, subject: str, reason: str, actor: Actor) -> bool:
    """Destroy the subject's key, so every copy of their personal fields reads as redacted,
    and record `platform.SubjectKeyDestroyed` once. Both steps are idempotent, so a caller
    that crashed between them finishes by calling again. True if the key was destroyed now."""
    destroyed = await rt.keys.destroy(subject)
    stream = subject_key_stream(subject)
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
