"""Every read of personal data is itself an event (SEC-3, RUL-1), and a subject may see
everything a service holds about them (RGT-1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.envelope import Actor, EventEnvelope, LegalBasis
from expensura_events.obligations import enforces
from expensura_events.privacy.ports import ServiceLog
from expensura_events.projections import Projection
from expensura_events.streams import access_stream
from expensura_events.vocabulary import ActorKind, Purpose


def access_record(
    rt: ServiceLog,
    *,
    subject_id: str,
    actor: Actor,
    purpose: Purpose,
    fields: Sequence[str],
    categories: Sequence[str],
    case_reference: str | None = None,
    legal_basis: LegalBasis | None = None,
    decision_id: UUID | None = None,
    decided_at: datetime | None = None,
) -> EventEnvelope:
    """The `platform.PersonalDataAccessed` event for a read: what was read, never the values."""
    event = PersonalDataAccessed(
        fields=sorted(fields),
        categories=sorted(set(categories)),
        case_reference=case_reference,
        decision_id=decision_id,
        decided_at=decided_at,
    )
    return rt.envelope(
        event,
        stream_id=access_stream(subject_id),
        subject_id=subject_id,
        actor=actor,
        purpose=purpose,
        legal_basis=legal_basis,
    )


@enforces("SEC-3")
async def record_access(
    rt: ServiceLog,
    conn: AsyncConnection,
    *,
    subject_id: str,
    actor: Actor,
    purpose: Purpose,
    fields: Sequence[str],
    categories: Sequence[str],
    case_reference: str | None = None,
    legal_basis: LegalBasis | None = None,
    decision_id: UUID | None = None,
    decided_at: datetime | None = None,
) -> EventEnvelope:
    """Record the read in the caller's transaction (refused if the purpose is restricted)."""
    [recorded] = await rt.append(
        conn,
        [
            access_record(
                rt,
                subject_id=subject_id,
                actor=actor,
                purpose=purpose,
                fields=fields,
                categories=categories,
                case_reference=case_reference,
                legal_basis=legal_basis,
                decision_id=decision_id,
                decided_at=decided_at,
            )
        ],
    )
    return recorded


@dataclass(frozen=True)
class SubjectRecords:
    """What one service holds about a subject: its log entries about them (decrypted) and
    its read models' rows, by projection and table."""

    events: list[EventEnvelope]
    read_models: dict[str, dict[str, list[Any]]]


@enforces("RGT-1")
async def subject_records(
    rt: ServiceLog,
    conn: AsyncConnection,
    subject_id: str,
    projections: Sequence[Projection],
) -> SubjectRecords:
    """Everything this service holds about the subject, for their access request (RGT-1);
    the read itself is recorded, in the caller's transaction."""
    events = await rt.store.read_subject(conn, subject_id)
    read_models: dict[str, dict[str, list[Any]]] = {}
    for projection in projections:
        rows = await projection.subject_rows(conn, subject_id)
        if any(rows.values()):
            read_models[projection.name] = rows
    await record_access(
        rt,
        conn,
        subject_id=subject_id,
        actor=Actor(kind=ActorKind.USER, id=subject_id),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        fields=["*"],
        categories=["all"],
        case_reference="subject-access-request",
    )
    return SubjectRecords(events, read_models)
