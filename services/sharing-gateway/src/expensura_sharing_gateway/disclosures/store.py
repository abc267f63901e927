"""Disclosures in SQL: one row per request answered, disclosed or refused (the subject's
view of what left and why), the gateway's own log read for proofs, and loans' dispute cases
(the read model a dispute-resolution request is checked against)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.loans_servicing import dispute_case_digest
from expensura_events.cipher import FieldCipher, SubjectErased
from expensura_events.sealing import place, seal, unseal
from expensura_events.store import EventStore
from expensura_sharing_gateway.disclosures.domain import DisclosureRecord
from expensura_sharing_gateway.tables import disclosures, dispute_cases


def _where(disclosure_id: object) -> str:
    return place(disclosures.name, disclosure_id)


async def _sealed_case(
    cipher: FieldCipher[Any], subject_id: str, disclosure_id: object, case_reference: str | None
) -> dict[str, Any] | None:
    """The case reference sealed with the subject's key (SEC-1); none is kept about an
    erased subject (a refused request for them is still recorded)."""
    if case_reference is None:
        return None
    try:
        sealed = await seal(
            cipher, subject_id, _where(disclosure_id), {"case_reference": case_reference}
        )
    except SubjectErased:
        return None
    return sealed["case_reference"]


async def add(conn: AsyncConnection, cipher: FieldCipher[Any], record: DisclosureRecord) -> None:
    sealed = await _sealed_case(
        cipher, record.subject_id, record.disclosure_id, record.case_reference
    )
    await conn.execute(
        disclosures.insert().values(
            disclosure_id=record.disclosure_id,
            subject_id=record.subject_id,
            partner_id=record.partner_id,
            purpose=record.purpose,
            fields=record.fields,
            outcome=record.outcome,
            reason=record.reason,
            ground=record.ground,
            decision_id=record.decision_id,
            case_reference_sealed=sealed,
            at=record.at,
        )
    )


def to_record(row: Any, case_reference: str | None) -> DisclosureRecord:
    return DisclosureRecord(
        disclosure_id=row.disclosure_id,
        subject_id=row.subject_id,
        partner_id=row.partner_id,
        purpose=row.purpose,
        fields=row.fields,
        outcome=row.outcome,
        reason=row.reason,
        ground=row.ground,
        decision_id=row.decision_id,
        case_reference=case_reference,
        at=row.at,
    )


async def disclosures_of(
    conn: AsyncConnection, cipher: FieldCipher[Any], subject_id: str
) -> list[DisclosureRecord]:
    """The subject's rows, case references opened (`REDACTED` once their key is gone)."""
    rows = await conn.execute(
        select(disclosures).where(disclosures.c.subject_id == subject_id).order_by(disclosures.c.at)
    )
    out = []
    for r in rows:
        case = r.case_reference  # a row from before sealing
        if r.case_reference_sealed is not None:
            opened = await unseal(
                cipher,
                subject_id,
                _where(r.disclosure_id),
                {"case_reference": r.case_reference_sealed},
            )
            case = opened["case_reference"]
        out.append(to_record(r, case))
    return out


async def seal_legacy_case_references(
    conn: AsyncConnection, cipher: FieldCipher[Any], batch: int
) -> int:
    """Seal up to `batch` case references stored in plaintext before sealing; how many."""
    rows = (
        await conn.execute(
            select(disclosures)
            .where(disclosures.c.case_reference.is_not(None))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for r in rows:
        sealed = await _sealed_case(cipher, r.subject_id, r.disclosure_id, r.case_reference)
        await conn.execute(
            update(disclosures)
            .where(disclosures.c.disclosure_id == r.disclosure_id)
            .values(case_reference=None, case_reference_sealed=sealed)
        )
    return len(rows)


async def delete_disclosures_of(conn: AsyncConnection, subject_id: str) -> int:
    result = await conn.execute(delete(disclosures).where(disclosures.c.subject_id == subject_id))
    return result.rowcount


async def own_log(conn: AsyncConnection, *, page: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """The gateway's log as stored (personal fields still sealed), each record parsed, with
    its sequence number: what `/internal/log` serves, read without HTTP."""
    after = 0
    while records := await EventStore.read_records(conn, after, page):
        for r in records:
            yield json.loads(r.record) | {"sequence": r.seq}
        after = records[-1].seq


async def record_dispute_case(
    conn: AsyncConnection, case_digest: str, subject_id: str, loan_id: UUID, at: datetime
) -> None:
    """A case loans opened, by its reference's digest; a replay of its event changes nothing."""
    await conn.execute(
        insert(dispute_cases)
        .values(case_digest=case_digest, subject_id=subject_id, loan_id=loan_id, opened_at=at)
        .on_conflict_do_nothing(index_elements=["case_digest"])
    )


async def case_subject(conn: AsyncConnection, case_reference: str) -> str | None:
    """Whose dispute the case is, if loans opened it (looked up by the reference's digest:
    the gateway never holds loans' references themselves)."""
    found = await conn.execute(
        select(dispute_cases.c.subject_id).where(
            dispute_cases.c.case_digest == dispute_case_digest(case_reference)
        )
    )
    subject: str | None = found.scalar_one_or_none()
    return subject
