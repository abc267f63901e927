"""Consent records in SQL: rows <-> `ConsentRecord`, locking reads, and the compare-and-set
of a state change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import String, bindparam, exists, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.records.domain import VALID_FOR_PROCESSING, ConsentRecord, ConsentStatus
from expensura_consent.tables import consent_records, ground_invocations
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


# The decision's read (decisions/service.py), in one round trip and built once (SQLAlchemy
# then finds its compiled form by a cache key computed once, instead of building and keying
# a new statement per decision): the subject's records of the purpose, locked FOR SHARE,
# with what else the decision may need beside them on each row: the subject's restriction
# and whether any legal-ground invocation exists for the purpose. The records are
# outer-joined to a one-row `asked`, so those two come back even when there is no record.
_ASKED = select(bindparam("subject_id", type_=String()).label("subject_id")).subquery("asked")
_LOCKED = (
    select(t)
    .where(t.c.subject_id == bindparam("subject_id"), t.c.purpose == bindparam("purpose"))
    .with_for_update(read=True)
    .cte("locked")
)
_RELIED_ON = (
    select(
        _LOCKED,
        select(subject_restrictions.c.state)
        .where(subject_restrictions.c.subject_id == _ASKED.c.subject_id)
        .scalar_subquery()
        .label("restriction"),
        exists()
        .where(
            ground_invocations.c.subject_id == _ASKED.c.subject_id,
            ground_invocations.c.purpose == bindparam("purpose"),
        )
        .label("any_ground"),
    )
    .select_from(_ASKED.outerjoin(_LOCKED, true()))
    .order_by(_LOCKED.c.given_at.desc(), _LOCKED.c.consent_id)
)


@dataclass(frozen=True)
class ReliedOn:
    """What a decision reads first: the records (newest first, locked until the caller's
    transaction ends, as `consents_of(..., for_share=True)`), the subject's restriction,
    and whether there is any ground invocation to read as well."""

    consents: list[ConsentRecord]
    restriction: Restriction | None
    any_ground: bool


async def relied_on(conn: AsyncConnection, subject_id: str, purpose: Purpose) -> ReliedOn:
    params = {"subject_id": subject_id, "purpose": purpose.value}
    rows = list(await conn.execute(_RELIED_ON, params))
    first = rows[0]
    return ReliedOn(
        consents=[to_consent(r) for r in rows if r.consent_id is not None],
        restriction=None if first.restriction is None else Restriction(first.restriction),
        any_ground=bool(first.any_ground),
    )


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


async def next_expiry(conn: AsyncConnection) -> datetime | None:
    """The earliest expiry of the records in force (None: none has one)."""
    earliest: datetime | None = await conn.scalar(
        select(func.min(t.c.expires_at)).where(
            t.c.status.in_([s.value for s in VALID_FOR_PROCESSING])
        )
    )
    return earliest


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
