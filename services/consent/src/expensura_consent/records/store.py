"""Reading consent records and grounds from consent's tables into domain records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.records.domain import ConsentRecord, ConsentStatus, GroundRecord
from expensura_consent.tables import consent_records, ground_invocations
from expensura_events.vocabulary import LegalGround, Purpose


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
    )


def to_ground(row: Any) -> GroundRecord:
    return GroundRecord(
        invocation_id=row.invocation_id,
        subject_id=row.subject_id,
        purpose=Purpose(row.purpose),
        ground=LegalGround(row.ground),
        categories=frozenset(row.categories),
        recipients=frozenset(row.recipients),
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
        evidence_reference=row.evidence_reference,
    )


async def consents_of(
    conn: AsyncConnection, subject_id: str, purpose: Purpose | None = None
) -> list[ConsentRecord]:
    query = select(consent_records).where(consent_records.c.subject_id == subject_id)
    if purpose is not None:
        query = query.where(consent_records.c.purpose == purpose.value)
    rows = await conn.execute(query.order_by(consent_records.c.given_at.desc()))
    return [to_consent(r) for r in rows]


async def grounds_of(
    conn: AsyncConnection, subject_id: str, purpose: Purpose
) -> list[GroundRecord]:
    rows = await conn.execute(
        select(ground_invocations).where(
            ground_invocations.c.subject_id == subject_id,
            ground_invocations.c.purpose == purpose.value,
        )
    )
    return [to_ground(r) for r in rows]
