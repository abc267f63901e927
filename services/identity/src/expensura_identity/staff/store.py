"""Staff accounts in SQL. Every change of a lock or of the enrolment is a compare-and-set on
the state it expects; the failure count is raised in the database, never read and written
back, so parallel wrong guesses each count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_identity.staff.domain import (
    Enrolment,
    StaffEmailTaken,
    StaffState,
    enrolment_of,
    state_of,
)
from expensura_identity.tables import staff_containments, staff_members


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
    disabled_at: datetime | None = None
    last_totp_step: int | None = None

    @property
    def principal_id(self) -> str:
        return self.staff_id

    @property
    def state(self) -> StaffState:
        return state_of(self.locked_at is not None, self.disabled_at is not None)

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
        r["disabled_at"],
        r["last_totp_step"],
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


async def containment_first_seen(
    conn: AsyncConnection, request_id: UUID, incident_id: UUID, staff_id: str, at: datetime
) -> bool:
    """Note an incident's request as carried out; False if it was before (a replay)."""
    inserted = await conn.execute(
        pg_insert(staff_containments)
        .values(
            request_id=request_id, incident_id=incident_id, staff_id=staff_id, carried_out_at=at
        )
        .on_conflict_do_nothing()
        .returning(staff_containments.c.request_id)
    )
    return inserted.first() is not None


async def count_failure(conn: AsyncConnection, staff_id: str) -> int | None:
    """One more wrong password or code, counted atomically; the count after it, or None if
    the account is locked or disabled already (counting stops at the lock)."""
    attempts: int | None = (
        await conn.execute(
            update(staff_members)
            .where(
                staff_members.c.staff_id == staff_id,
                staff_members.c.locked_at.is_(None),
                staff_members.c.disabled_at.is_(None),
            )
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
    conn: AsyncConnection, staff_id: str, remaining_codes: list[str], totp_step: int | None
) -> bool:
    """A proven second factor: the count starts again; a used recovery code is gone; a TOTP
    code's step is the last one accepted. A compare-and-set on that step: False if a code of
    this step or a later one was accepted meanwhile."""
    step = staff_members.c.last_totp_step
    changed = await conn.execute(
        update(staff_members)
        .where(
            staff_members.c.staff_id == staff_id,
            true() if totp_step is None else or_(step.is_(None), step < totp_step),
        )
        .values(
            failed_attempts=0,
            recovery_codes=remaining_codes,
            last_totp_step=step if totp_step is None else totp_step,
        )
    )
    return changed.rowcount == 1


async def disable(conn: AsyncConnection, staff_id: str, at: datetime) -> bool:
    """active|locked → disabled; False if disabled already or no such staff member."""
    changed = await conn.execute(
        update(staff_members)
        .where(staff_members.c.staff_id == staff_id, staff_members.c.disabled_at.is_(None))
        .values(disabled_at=at)
    )
    return changed.rowcount == 1


async def enable(conn: AsyncConnection, staff_id: str) -> bool:
    """disabled → active, unlocked, with a fresh count; False if it was not disabled."""
    changed = await conn.execute(
        update(staff_members)
        .where(staff_members.c.staff_id == staff_id, staff_members.c.disabled_at.is_not(None))
        .values(disabled_at=None, locked_at=None, failed_attempts=0)
    )
    return changed.rowcount == 1


async def set_roles(conn: AsyncConnection, staff_id: str, roles: list[str]) -> None:
    await conn.execute(
        update(staff_members).where(staff_members.c.staff_id == staff_id).values(roles=roles)
    )


async def reset_totp(conn: AsyncConnection, staff_id: str) -> None:
    """enrolled|started|none → none: no secret, no recovery codes. The last step stays: a
    new secret's codes are new steps anyway, and an old code must not come back."""
    await conn.execute(
        update(staff_members)
        .where(staff_members.c.staff_id == staff_id)
        .values(totp_secret_wrapped=None, totp_enrolled=False, recovery_codes=[])
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


async def confirm_enrolment(
    conn: AsyncConnection, staff_id: str, code_hashes: list[str], totp_step: int
) -> bool:
    """started → enrolled; False if it was not started (or enrolled already). The code that
    confirmed it is used up like any other."""
    changed = await conn.execute(
        update(staff_members)
        .where(
            staff_members.c.staff_id == staff_id,
            staff_members.c.totp_enrolled.is_(False),
            staff_members.c.totp_secret_wrapped.is_not(None),
        )
        .values(totp_enrolled=True, recovery_codes=code_hashes, last_totp_step=totp_step)
    )
    return changed.rowcount == 1
