"""Policy versions, answers and notices in SQL. The notice row is keyed by (version,
subject): a second worker, or a crash and a retry, can only find it done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.policy.domain import Answer, PolicyVersion
from expensura_consent.tables import (
    known_subjects,
    policy_notifications,
    policy_responses,
    policy_versions,
)
from expensura_events.tables import subject_restrictions

_FANOUT_LOCK = 0x504F4C59  # "POLY"


@dataclass(frozen=True)
class PendingNotice:
    version: str
    effective_at: datetime
    subject_id: str


def _version(row: Any) -> PolicyVersion:
    return PolicyVersion(
        row.version, row.sha256, row.text, row.summary, row.effective_at, row.published_at
    )


async def add_version(conn: AsyncConnection, version: PolicyVersion) -> bool:
    """False if the version exists (nothing written)."""
    inserted = await conn.execute(
        insert(policy_versions)
        .values(
            version=version.version,
            sha256=version.sha256,
            text=version.text,
            summary=version.summary,
            effective_at=version.effective_at,
            published_at=version.published_at,
        )
        .on_conflict_do_nothing()
    )
    return inserted.rowcount == 1


async def any_version(conn: AsyncConnection) -> bool:
    return (await conn.execute(select(policy_versions.c.version).limit(1))).first() is not None


async def is_published(conn: AsyncConnection, version: str) -> bool:
    found = await conn.execute(
        select(policy_versions.c.version).where(policy_versions.c.version == version)
    )
    return found.first() is not None


async def latest(conn: AsyncConnection) -> PolicyVersion | None:
    row = (
        await conn.execute(
            select(policy_versions).order_by(policy_versions.c.published_at.desc()).limit(1)
        )
    ).one_or_none()
    return None if row is None else _version(row)


async def record_answer(conn: AsyncConnection, answer: Answer) -> None:
    """The subject's latest answer to the version replaces an earlier one."""
    stmt = insert(policy_responses).values(
        version=answer.version,
        subject_id=answer.subject_id,
        accepted=answer.accepted,
        responded_at=answer.responded_at,
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["version", "subject_id"],
            set_={"accepted": answer.accepted, "responded_at": answer.responded_at},
        )
    )


async def lock_fanout(conn: AsyncConnection) -> None:
    """One fan-out at a time, until the caller's transaction ends."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FANOUT_LOCK})


async def pending_notices(conn: AsyncConnection, limit: int) -> list[PendingNotice]:
    """(version, subject) pairs not notified yet, of unrestricted subjects."""
    rows = await conn.execute(
        select(
            policy_versions.c.version,
            policy_versions.c.effective_at,
            known_subjects.c.subject_id,
        )
        .select_from(policy_versions.join(known_subjects, text("true")))
        .where(
            # A notice is of a change: whoever signed up after the version was
            # published agreed to it then (and the first version is no change).
            known_subjects.c.account_opened_at < policy_versions.c.published_at,
            ~select(subject_restrictions.c.subject_id)
            .where(subject_restrictions.c.subject_id == known_subjects.c.subject_id)
            .exists(),
            ~select(policy_notifications.c.subject_id)
            .where(
                policy_notifications.c.version == policy_versions.c.version,
                policy_notifications.c.subject_id == known_subjects.c.subject_id,
            )
            .exists(),
        )
        .limit(limit)
    )
    return [PendingNotice(r.version, r.effective_at, r.subject_id) for r in rows]


async def add_notices(
    conn: AsyncConnection,
    notified: Sequence[tuple[PendingNotice, UUID]],
    at: datetime,
) -> None:
    """Each notice with the id of the event that requested it."""
    await conn.execute(
        policy_notifications.insert(),
        [
            {
                "version": p.version,
                "subject_id": p.subject_id,
                "event_id": event_id,
                "requested_at": at,
            }
            for p, event_id in notified
        ],
    )
