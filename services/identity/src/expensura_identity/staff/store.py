"""Staff accounts in SQL. Every change of a lock or of the enrolment is a compare-and-set on
the state it expects; the failure count is raised in the database, never read and written
back, so parallel wrong guesses each count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_identity.staff.domain import Enrolment, StaffEmailTaken, StaffState, enrolment_of
from expensura_identity.tables import staff_members


@dataclass(frozen=True)
class StaffRecord:
    staff_id: str
    password_hash: str
    roles: list[str]
    totp_secret_wrapped: bytes | None
    totp_enrolled: bool
    recovery_codes: list[str]
    failed_attempts: int
    locked_at: datetime | None

    @property
    def principal_id(self) -> str:
        return self.staff_id

    @property
    def state(self) -> StaffState:
        return StaffState.ACTIVE if self.locked_at is None else StaffState.LOCKED

    @property
    def enrolment(self) -> Enrolment:
        return enrolment_of(self.totp_enrolled, self.totp_secret_wrapped is not None)


def _record(row: Row[Any]) -> StaffRecord:
    r = row._mapping
    return StaffRecord(
        r["staff_id"],
        r["password_hash"],
        list(r["roles"]),
        r["totp_secret_wrapped"],
        r["totp_enrolled"],
        list(r["recovery_codes"]),
        r["failed_attempts"],
        r["locked_at"],
    )


async def insert(
    conn: AsyncConnection,
    staff_id: str,
    email_lookup: bytes,
    password_hash: str,
    roles: list[str],
    created_at: datetime,
) -> None:
    try:
        await conn.execute(
            staff_members.insert().values(
                staff_id=staff_id,
                email_lookup=email_lookup,
                password_hash=password_hash,
                roles=roles,
                totp_secret_wrapped=None,
                totp_enrolled=False,
                recovery_codes=[],
                failed_attempts=0,
                created_at=created_at,
            )
        )
    except IntegrityError:
        raise StaffEmailTaken() from None


async def by_email(conn: AsyncConnection, email_lookup: bytes) -> StaffRecord | None:
    row = (
        await conn.execute(
            select(staff_members).where(staff_members.c.email_lookup == email_lookup)
        )
    ).one_or_none()
    return None if row is None else _record(row)


async def for_update(conn: AsyncConnection, staff_id: str) -> StaffRecord | None:
    row = (
        await conn.execute(
            select(staff_members).where(staff_members.c.staff_id == staff_id).with_for_update()
        )
    ).one_or_none()
    return None if row is None else _record(row)


async def count_failure(conn: AsyncConnection, staff_id: str) -> int | None:
    """One more wrong password or code, counted atomically; the count after it, or None if
    the account is locked already (counting stops at the lock)."""
    attempts: int | None = (
        await conn.execute(
            update(staff_members)
            .where(staff_members.c.staff_id == staff_id, staff_members.c.locked_at.is_(None))
            .values(failed_attempts=staff_members.c.failed_attempts + 1)
            .returning(staff_members.c.failed_attempts)
        )
    ).scalar_one_or_none()
    return attempts


async def lock(conn: AsyncConnection, staff_id: str, at: datetime) -> bool:
    """active → locked; False if it was not active."""
    changed = await conn.execute(
        update(staff_members)
        .where(staff_members.c.staff_id == staff_id, staff_members.c.locked_at.is_(None))
        .values(locked_at=at)
    )
    return changed.rowcount == 1


async def unlock(conn: AsyncConnection, staff_id: str) -> bool:
    """→ active with a fresh count; False if there is no such staff member."""
    changed = await conn.execute(
        update(staff_members)
        .where(staff_members.c.staff_id == staff_id)
        .values(locked_at=None, failed_attempts=0)
    )
    return changed.rowcount == 1


async def passed_second_factor(
    conn: AsyncConnection, staff_id: str, remaining_codes: list[str]
) -> None:
    """A proven second factor: the count starts again; a used recovery code is gone."""
    await conn.execute(
        update(staff_members)
        .where(staff_members.c.staff_id == staff_id)
        .values(failed_attempts=0, recovery_codes=remaining_codes)
    )


async def enrolment(conn: AsyncConnection, staff_id: str) -> Enrolment | None:
    row = (
        await conn.execute(
            select(staff_members.c.totp_enrolled, staff_members.c.totp_secret_wrapped).where(
                staff_members.c.staff_id == staff_id
            )
        )
    ).one_or_none()
    return (
        None
        if row is None
        else enrolment_of(row.totp_enrolled, row.totp_secret_wrapped is not None)
    )


async def start_enrolment(conn: AsyncConnection, staff_id: str, secret_wrapped: bytes) -> bool:
    """none|started → started; False if enrolled meanwhile."""
    changed = await conn.execute(
        update(staff_members)
        .where(staff_members.c.staff_id == staff_id, staff_members.c.totp_enrolled.is_(False))
        .values(totp_secret_wrapped=secret_wrapped)
    )
    return changed.rowcount == 1


async def confirm_enrolment(conn: AsyncConnection, staff_id: str, code_hashes: list[str]) -> bool:
    """started → enrolled; False if it was not started (or enrolled already)."""
    changed = await conn.execute(
        update(staff_members)
        .where(
            staff_members.c.staff_id == staff_id,
            staff_members.c.totp_enrolled.is_(False),
            staff_members.c.totp_secret_wrapped.is_not(None),
        )
        .values(totp_enrolled=True, recovery_codes=code_hashes)
    )
    return changed.rowcount == 1
