"""Disclosures in SQL: one row per request answered, disclosed or refused (the subject's
view of what left and why), and the gateway's own log read for proofs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.store import EventStore
from expensura_sharing_gateway.disclosures.domain import DisclosureRecord
from expensura_sharing_gateway.tables import disclosures


async def add(conn: AsyncConnection, record: DisclosureRecord) -> None:
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
            case_reference=record.case_reference,
            at=record.at,
        )
    )


def to_record(row: Any) -> DisclosureRecord:
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
        case_reference=row.case_reference,
        at=row.at,
    )


async def disclosures_of(conn: AsyncConnection, subject_id: str) -> list[DisclosureRecord]:
    rows = await conn.execute(
        select(disclosures).where(disclosures.c.subject_id == subject_id).order_by(disclosures.c.at)
    )
    return [to_record(r) for r in rows]


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
