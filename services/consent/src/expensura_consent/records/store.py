"""Consent records in SQL: rows <-> `ConsentRecord`, locking reads, and the compare-and-set
of a state change."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.records.domain import VALID_FOR_PROCESSING, ConsentRecord, ConsentStatus
from expensura_consent.tables import consent_records
from expensura_events.privacy.restrictions import Restriction
from expensura_events.tables import subject_restrictions
from expensura_events.vocabulary import CollectionChannel, Purpose

t = consent_records


def to_consent(row: Any) -> ConsentRecord:
    return ConsentRecord(
        consent_id=row.consent_id,
        subject_id=row.subject_id,
        purpose=Purpose(row.purpose),
        purpose_version=row.purpose_version,
        categories=frozenset(row.categories),
        recipients=frozenset(row.recipients),
        status=ConsentStatus(row.status),
        expires_at=row.expires_at,
        policy_version=row.policy_version,
        channel=CollectionChannel(row.channel),
        given_at=row.given_at,
    )


async def insert(conn: AsyncConnection, record: ConsentRecord) -> None:
    await conn.execute(
        t.insert().values(
            consent_id=record.consent_id,
            subject_id=record.subject_id,
            purpose=record.purpose.value,
            purpose_version=record.purpose_version,
            categories=sorted(record.categories),
            recipients=sorted(record.recipients),
            policy_version=record.policy_version,
            channel=record.channel.value,
            status=record.status.value,
            given_at=record.given_at,
            expires_at=record.expires_at,
            updated_at=record.given_at,
        )
    )


async def consents_of(
    conn: AsyncConnection,
    subject_id: str,
    purpose: Purpose | None = None,
    *,
    for_share: bool = False,
) -> list[ConsentRecord]:
    """The subject's records, newest first. `for_share` locks them until the caller's
    transaction ends: a withdrawal (which locks its record for update) waits for it, and a
    withdrawal already holding its lock is waited for and then seen."""
    query = select(t).where(t.c.subject_id == subject_id)
    if purpose is not None:
        query = query.where(t.c.purpose == purpose.value)
    query = query.order_by(t.c.given_at.desc(), t.c.consent_id)
    if for_share:
        query = query.with_for_update(read=True)
    return [to_consent(r) for r in await conn.execute(query)]


# The decision's read (decisions/service.py), built once: SQLAlchemy then finds its compiled
# form by a cache key it computed once, instead of building and keying a new statement per
# decision. The subject's restriction rides along as a column of each row, saving a round
# trip (with no record there is nothing to restrict: the caller reads it if a ground allows).
_RELIED_ON = (
    select(
        t,
        select(subject_restrictions.c.state)
        .where(subject_restrictions.c.subject_id == t.c.subject_id)
        .scalar_subquery()
        .label("restriction"),
    )
    .where(t.c.subject_id == bindparam("subject_id"), t.c.purpose == bindparam("purpose"))
    .order_by(t.c.given_at.desc(), t.c.consent_id)
    .with_for_update(read=True, of=t)
)


async def relied_on(
    conn: AsyncConnection, subject_id: str, purpose: Purpose
) -> tuple[list[ConsentRecord], Restriction | None]:
    """The subject's records for the purpose, newest first, locked FOR SHARE until the
    caller's transaction ends (as `consents_of(..., for_share=True)`), and the subject's
    restriction as it is now (None also when there is no record)."""
    rows = list(
        await conn.execute(_RELIED_ON, {"subject_id": subject_id, "purpose": purpose.value})
    )
    state = next((r.restriction for r in rows if r.restriction is not None), None)
    return [to_consent(r) for r in rows], None if state is None else Restriction(state)


async def listed(conn: AsyncConnection, subject_id: str) -> list[ConsentRecord]:
    """The subject's records, oldest first (as the subject sees them)."""
    rows = await conn.execute(select(t).where(t.c.subject_id == subject_id).order_by(t.c.given_at))
    return [to_consent(r) for r in rows]


async def get(
    conn: AsyncConnection, consent_id: UUID, *, for_update: bool = False
) -> ConsentRecord | None:
    query = select(t).where(t.c.consent_id == consent_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else to_consent(row)


async def transition(
    conn: AsyncConnection,
    consent_id: UUID,
    current: ConsentStatus,
    to: ConsentStatus,
    at: datetime,
) -> bool:
    """current → to; False if the record was no longer `current`."""
    changed = await conn.execute(
        update(t)
        .where(t.c.consent_id == consent_id, t.c.status == current.value)
        .values(status=to.value, updated_at=at)
    )
    return changed.rowcount == 1


async def due_to_expire(conn: AsyncConnection, now: datetime) -> list[ConsentRecord]:
    """Records in force whose expiry has passed, locked; a record another transaction holds
    (a decision reading it, a withdrawal) is left for the next round."""
    rows = await conn.execute(
        select(t)
        .where(
            t.c.status.in_([s.value for s in VALID_FOR_PROCESSING]),
            t.c.expires_at <= now,
        )
        .with_for_update(skip_locked=True)
    )
    return [to_consent(r) for r in rows]
