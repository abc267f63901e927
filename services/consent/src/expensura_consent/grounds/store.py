"""Legal-ground invocations in SQL: rows <-> `GroundRecord`, locking reads, and the
compare-and-sets of a revocation and of a second officer's decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.grounds.domain import GroundRecord, Invocation
from expensura_consent.tables import ground_invocations
from expensura_events.envelope import Actor
from expensura_events.four_eyes import Approval
from expensura_events.vocabulary import LegalGround, Purpose

t = ground_invocations


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
        # sealed texts are opened by the service where they are shown (`service.opened`)
        evidence_reference=row.evidence_reference or "",
        reason=row.reason or "",
        invoked_by=f"{row.invoked_by_kind}:{row.invoked_by_id}",
        created_at=row.created_at,
        approval=Approval(row.approval),
        decided_by=(
            None if row.decided_by_id is None else f"{row.decided_by_kind}:{row.decided_by_id}"
        ),
        decided_at=row.decided_at,
    )


async def insert(
    conn: AsyncConnection,
    invocation_id: UUID,
    invocation: Invocation,
    officer: Actor,
    at: datetime,
    approval: Approval,
    sealed: Mapping[str, Any],
) -> None:
    """`sealed`: the invocation's evidence and reason, sealed with the subject's key."""
    await conn.execute(
        t.insert().values(
            invocation_id=invocation_id,
            subject_id=invocation.subject_id,
            purpose=invocation.purpose.value,
            ground=invocation.ground.value,
            categories=sorted(invocation.categories),
            recipients=sorted(invocation.recipients),
            evidence_sealed=sealed["evidence_reference"],
            reason_sealed=sealed["reason"],
            invoked_by_kind=officer.kind.value,
            invoked_by_id=officer.id,
            created_at=at,
            expires_at=invocation.expires_at,
            approval=approval.value,
        )
    )


async def get(
    conn: AsyncConnection, invocation_id: UUID, *, for_update: bool = False
) -> GroundRecord | None:
    query = select(t).where(t.c.invocation_id == invocation_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else to_ground(row)


# Built once (the decision's read, see records/store.py `_RELIED_ON`).
_OF_SUBJECT = (
    select(t)
    .where(t.c.subject_id == bindparam("subject_id"), t.c.purpose == bindparam("purpose"))
    .order_by(t.c.created_at, t.c.invocation_id)
)
_OF_SUBJECT_FOR_SHARE = _OF_SUBJECT.with_for_update(read=True)


async def grounds_of(
    conn: AsyncConnection, subject_id: str, purpose: Purpose, *, for_share: bool = False
) -> list[GroundRecord]:
    """The subject's invocations for the purpose. `for_share` locks them until the caller's
    transaction ends, so a revocation and a decision never overlap."""
    query = _OF_SUBJECT_FOR_SHARE if for_share else _OF_SUBJECT
    params = {"subject_id": subject_id, "purpose": purpose.value}
    return [to_ground(r) for r in await conn.execute(query, params)]


async def revoke(conn: AsyncConnection, invocation_id: UUID, at: datetime) -> bool:
    """active → revoked; False if it was revoked already."""
    changed = await conn.execute(
        update(t)
        .where(t.c.invocation_id == invocation_id, t.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return changed.rowcount == 1


async def decide(
    conn: AsyncConnection, invocation_id: UUID, approval: Approval, by: Actor, at: datetime
) -> bool:
    """pending → approved | rejected, once; False if it was decided or withdrawn already."""
    changed = await conn.execute(
        update(t)
        .where(
            t.c.invocation_id == invocation_id,
            t.c.approval == Approval.PENDING.value,
            t.c.revoked_at.is_(None),
        )
        .values(
            approval=approval.value,
            decided_by_kind=by.kind.value,
            decided_by_id=by.id,
            decided_at=at,
        )
    )
    return changed.rowcount == 1


async def every(conn: AsyncConnection) -> list[GroundRecord]:
    """Every invocation, oldest first."""
    return [to_ground(r) for r in await conn.execute(select(t).order_by(t.c.created_at))]


@dataclass(frozen=True)
class SealedTexts:
    """An invocation's evidence and reason as stored: sealed boxes, or plaintext from before
    sealing (consent_0006) that the legacy worker has not reached yet."""

    invocation_id: UUID
    subject_id: str
    sealed: dict[str, Any]
    plaintext: dict[str, str | None]


def _texts(row: Any) -> SealedTexts:
    return SealedTexts(
        invocation_id=row.invocation_id,
        subject_id=row.subject_id,
        sealed={
            k: v
            for k, v in (("evidence_reference", row.evidence_sealed), ("reason", row.reason_sealed))
            if v is not None
        },
        plaintext={"evidence_reference": row.evidence_reference, "reason": row.reason},
    )


_TEXT_COLUMNS = (
    t.c.invocation_id,
    t.c.subject_id,
    t.c.evidence_sealed,
    t.c.reason_sealed,
    t.c.evidence_reference,
    t.c.reason,
)


async def texts_of(conn: AsyncConnection, invocation_ids: Sequence[UUID]) -> list[SealedTexts]:
    rows = await conn.execute(select(*_TEXT_COLUMNS).where(t.c.invocation_id.in_(invocation_ids)))
    return [_texts(r) for r in rows]


async def with_plaintext_texts(conn: AsyncConnection, batch: int) -> list[SealedTexts]:
    """Rows from before sealing, locked for the worker that seals them."""
    rows = await conn.execute(
        select(*_TEXT_COLUMNS)
        .where((t.c.evidence_reference.is_not(None)) | (t.c.reason.is_not(None)))
        .order_by(t.c.created_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return [_texts(r) for r in rows]


async def replace_texts(
    conn: AsyncConnection, invocation_id: UUID, sealed: Mapping[str, Any]
) -> None:
    """The sealed texts in place of the plaintext ones."""
    await conn.execute(
        update(t)
        .where(t.c.invocation_id == invocation_id)
        .values(
            evidence_sealed=sealed.get("evidence_reference"),
            reason_sealed=sealed.get("reason"),
            evidence_reference=None,
            reason=None,
        )
    )
