"""Incident's SQL for the response workflow (SEC-4) and regulators' reports (SEC-5): the
incident rows, their actions in order, the reports filed. Rows <-> the domain's records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_incident.grading.domain import (
    Adjustment,
    Assessment,
    Availability,
    Circumstances,
    Confidentiality,
    DataCategory,
    DataSet,
    EaseOfIdentification,
    Integrity,
)
from expensura_incident.regimes.domain import Exposed, Exposure, Protection
from expensura_incident.response.domain import (
    Action,
    ActionKind,
    Analyse,
    Close,
    Contain,
    Containment,
    Incident,
    IncidentState,
    Regrade,
    Remediate,
    Report,
    Source,
    Triage,
    VerisAction,
)
from expensura_incident.tables import incident_actions, incident_regulator_reports, incidents

# Entries of an incident's timeline that are not workflow actions (no state change).
ATTACH_EXPOSURE = "attach-exposure"
FILE_REPORT = "file-report"
ATTACH_CAUSE = "attach-cause"  # a further occurrence of an auto-raised incident's cause


# --- codecs: the domain's records as JSON --------------------------------------------------


def assessment_json(assessment: Assessment) -> dict[str, Any]:
    c = assessment.circumstances
    return {
        "data": [
            {"category": d.category.value, "adjustment": d.adjustment and d.adjustment.value}
            for d in assessment.data
        ],
        "identification": assessment.identification.value,
        "confidentiality": c.confidentiality.value,
        "integrity": c.integrity.value,
        "availability": c.availability.value,
        "malicious": c.malicious,
    }


def assessment_of(data: dict[str, Any]) -> Assessment:
    return Assessment(
        tuple(
            DataSet(
                DataCategory(d["category"]),
                None if d["adjustment"] is None else Adjustment(d["adjustment"]),
            )
            for d in data["data"]
        ),
        EaseOfIdentification(data["identification"]),
        Circumstances(
            Confidentiality(data["confidentiality"]),
            Integrity(data["integrity"]),
            Availability(data["availability"]),
            data["malicious"],
        ),
    )


def exposure_json(exposure: Exposure) -> dict[str, Any]:
    return {
        "groups": [
            {"residence": g.residence, "protection": g.protection.value, "subjects": g.subjects}
            for g in exposure.groups
        ],
        "information_types": list(exposure.information_types),
        "first_at": None if exposure.first_at is None else exposure.first_at.isoformat(),
        "last_at": None if exposure.last_at is None else exposure.last_at.isoformat(),
    }


def exposure_of(data: dict[str, Any]) -> Exposure:
    return Exposure(
        groups=tuple(
            Exposed(g["residence"], Protection(g["protection"]), g["subjects"])
            for g in data["groups"]
        ),
        information_types=tuple(data["information_types"]),
        first_at=None if data["first_at"] is None else datetime.fromisoformat(data["first_at"]),
        last_at=None if data["last_at"] is None else datetime.fromisoformat(data["last_at"]),
    )


def action_json(action: Action) -> dict[str, Any]:
    """An action's own fields (its kind, actor and time are columns)."""
    detail: dict[str, Any] = {"note": action.note}
    match action:
        case Report():
            detail |= {"source": action.source.value, "summary": action.summary}
        case Triage():
            detail |= {
                "category": action.category.value,
                "assessment": assessment_json(action.assessment),
            }
        case Regrade():
            detail |= {"assessment": assessment_json(action.assessment)}
        case Contain():
            detail |= {
                "measure": action.measure.value,
                "target": action.target,
                "owner": action.owner,
            }
        case Analyse():
            detail |= {"root_cause": action.root_cause}
        case Remediate():
            detail |= {"measure": action.measure}
    return detail


def action_of(kind: ActionKind, actor: str, at: datetime, d: dict[str, Any]) -> Action:
    note = d.get("note", "")
    match kind:
        case ActionKind.REPORT:
            return Report(
                actor=actor, at=at, note=note, source=Source(d["source"]), summary=d["summary"]
            )
        case ActionKind.TRIAGE:
            return Triage(
                actor=actor,
                at=at,
                note=note,
                category=VerisAction(d["category"]),
                assessment=assessment_of(d["assessment"]),
            )
        case ActionKind.REGRADE:
            return Regrade(actor=actor, at=at, note=note, assessment=assessment_of(d["assessment"]))
        case ActionKind.CONTAIN:
            return Contain(
                actor=actor,
                at=at,
                note=note,
                measure=Containment(d["measure"]),
                target=d["target"],
                owner=d.get("owner", ""),
            )
        case ActionKind.ANALYSE:
            return Analyse(actor=actor, at=at, note=note, root_cause=d["root_cause"])
        case ActionKind.REMEDIATE:
            return Remediate(actor=actor, at=at, note=note, measure=d["measure"])
        case ActionKind.CLOSE:
            return Close(actor=actor, at=at, note=note)


# --- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredIncident:
    incident_id: UUID
    state: IncidentState
    severity: str | None
    score: float | None
    summary: str
    reported_at: datetime
    exposure: Exposure | None
    exposure_attached_at: datetime | None
    version: int


@dataclass(frozen=True)
class TimelineEntry:
    """One line of an incident's timeline: a workflow action (`action` set) or an exposure
    summary attached / a report filed (`action` None, `detail` says what)."""

    seq: int
    kind: str
    actor: str
    role: str | None
    at: datetime
    detail: dict[str, Any]
    event_id: UUID
    action: Action | None


@dataclass(frozen=True)
class FiledReport:
    regime: str
    filed_by: str
    filed_at: datetime
    reference: str | None


def _incident(row: Any) -> StoredIncident:
    return StoredIncident(
        incident_id=row.incident_id,
        state=IncidentState(row.state),
        severity=row.severity,
        score=row.score,
        summary=row.summary,
        reported_at=row.reported_at,
        exposure=None if row.exposure is None else exposure_of(row.exposure),
        exposure_attached_at=row.exposure_attached_at,
        version=row.version,
    )


def _workflow(kind: str) -> ActionKind | None:
    return ActionKind(kind) if kind in ActionKind.__members__.values() else None


def _entry(row: Any) -> TimelineEntry:
    kind = _workflow(row.kind)
    return TimelineEntry(
        seq=row.seq,
        kind=row.kind,
        actor=row.actor,
        role=row.role,
        at=row.at,
        detail=dict(row.detail),
        event_id=row.event_id,
        action=None if kind is None else action_of(kind, row.actor, row.at, row.detail),
    )


def _grade(incident: Incident) -> dict[str, Any]:
    assessment = incident.assessment
    return {
        "state": incident.state.value,
        "category": None if incident.category is None else incident.category.value,
        "severity": None if assessment is None else assessment.severity.value,
        "score": None if assessment is None else assessment.score,
        "closed_at": incident.closed_at,
    }


async def add_incident(
    conn: AsyncConnection, incident_id: UUID, incident: Incident, at: datetime
) -> None:
    await conn.execute(
        incidents.insert().values(
            incident_id=incident_id,
            source=incident.source.value,
            summary=incident.summary,
            reported_by=incident.reported_by,
            reported_at=incident.reported_at,
            version=1,  # its stream holds the report
            updated_at=at,
            **_grade(incident),
        )
    )


async def incident(
    conn: AsyncConnection, incident_id: UUID, *, lock: bool = False
) -> StoredIncident | None:
    query = select(incidents).where(incidents.c.incident_id == incident_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _incident(row)


async def open_incidents(conn: AsyncConnection) -> list[StoredIncident]:
    rows = await conn.execute(
        select(incidents)
        .where(incidents.c.state != IncidentState.CLOSED.value)
        .order_by(incidents.c.reported_at)
    )
    return [_incident(r) for r in rows]


async def open_by_severity(conn: AsyncConnection) -> dict[str | None, int]:
    """Incidents not closed, per severity (None: not graded yet)."""
    rows = await conn.execute(
        select(incidents.c.severity, func.count())
        .where(incidents.c.state != IncidentState.CLOSED.value)
        .group_by(incidents.c.severity)
    )
    return {r[0]: int(r[1]) for r in rows}


async def timeline(conn: AsyncConnection, incident_id: UUID) -> list[TimelineEntry]:
    rows = await conn.execute(
        select(incident_actions)
        .where(incident_actions.c.incident_id == incident_id)
        .order_by(incident_actions.c.seq)
    )
    return [_entry(r) for r in rows]


async def moved_on(
    conn: AsyncConnection,
    incident_id: UUID,
    from_version: int,
    values: dict[str, Any],
    at: datetime,
) -> bool:
    """Compare-and-set: move the row to `from_version + 1` with `values`, only if it is
    still at `from_version`. False: another action got there first."""
    result = await conn.execute(
        update(incidents)
        .where(incidents.c.incident_id == incident_id, incidents.c.version == from_version)
        .values(version=from_version + 1, updated_at=at, **values)
    )
    return bool(result.rowcount)


async def advance(
    conn: AsyncConnection, incident_id: UUID, from_version: int, after: Incident, at: datetime
) -> bool:
    """The incident's row as `after` (the fold with the new action), by compare-and-set."""
    return await moved_on(conn, incident_id, from_version, _grade(after), at)


async def attach_exposure(
    conn: AsyncConnection, incident_id: UUID, from_version: int, exposure: Exposure, at: datetime
) -> bool:
    return await moved_on(
        conn,
        incident_id,
        from_version,
        {"exposure": exposure_json(exposure), "exposure_attached_at": at},
        at,
    )


async def add_entry(
    conn: AsyncConnection,
    incident_id: UUID,
    *,
    seq: int,
    kind: str,
    actor: str,
    role: str | None,
    at: datetime,
    detail: dict[str, Any],
    event_id: UUID,
) -> None:
    await conn.execute(
        incident_actions.insert().values(
            incident_id=incident_id,
            seq=seq,
            kind=kind,
            actor=actor,
            role=role,
            at=at,
            detail=detail,
            event_id=event_id,
        )
    )


async def add_report(
    conn: AsyncConnection,
    incident_id: UUID,
    *,
    regime: str,
    filed_by: str,
    filed_at: datetime,
    reference: str | None,
    event_id: UUID,
) -> None:
    await conn.execute(
        incident_regulator_reports.insert().values(
            incident_id=incident_id,
            regime=regime,
            filed_by=filed_by,
            filed_at=filed_at,
            reference=reference,
            event_id=event_id,
        )
    )


async def reports(conn: AsyncConnection, incident_id: UUID) -> list[FiledReport]:
    r = incident_regulator_reports.c
    rows = await conn.execute(
        select(r.regime, r.filed_by, r.filed_at, r.reference)
        .where(r.incident_id == incident_id)
        .order_by(r.filed_at)
    )
    return [FiledReport(row.regime, row.filed_by, row.filed_at, row.reference) for row in rows]
