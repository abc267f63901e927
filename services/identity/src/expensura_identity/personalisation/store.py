"""Personalisation profiles in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_identity.tables import personalisation_profiles as t


@dataclass(frozen=True)
class ProfileRecord:
    sign_ins: int
    usual_hour_utc: int | None
    updated_at: datetime


async def start(conn: AsyncConnection, subject_id: str, consent_id: UUID, at: datetime) -> None:
    await conn.execute(
        insert(t)
        .values(subject_id=subject_id, consent_id=consent_id, sign_ins=0, updated_at=at)
        .on_conflict_do_update(index_elements=["subject_id"], set_={"consent_id": consent_id})
    )


async def end(conn: AsyncConnection, subject_id: str, consent_id: UUID) -> None:
    """Only the profile this consent started: a newer consent's profile stays."""
    await conn.execute(delete(t).where(t.c.subject_id == subject_id, t.c.consent_id == consent_id))


async def count_sign_in(conn: AsyncConnection, subject_id: str, at: datetime) -> None:
    """Only a profile that consent started is updated; without one nothing is kept."""
    await conn.execute(
        update(t)
        .where(t.c.subject_id == subject_id)
        .values(sign_ins=t.c.sign_ins + 1, usual_hour_utc=at.hour, updated_at=at)
    )


async def profile(conn: AsyncConnection, subject_id: str) -> ProfileRecord | None:
    row = (await conn.execute(select(t).where(t.c.subject_id == subject_id))).one_or_none()
    return None if row is None else ProfileRecord(row.sign_ins, row.usual_hour_utc, row.updated_at)
