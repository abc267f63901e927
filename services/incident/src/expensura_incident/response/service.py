"""Use cases of the incident response (SEC-4) and the regulators' reports (SEC-5): report an
incident, take the workflow's actions on it, attach its exposure summary, file a report,
read it with its timeline and deadlines, draft the FTC's report.

Every action runs in one transaction: the incident's row locked (`FOR UPDATE`), its actions
folded, the new one applied by the domain's rules, the row moved on by compare-and-set from
the version read, the action's timeline entry written and its event appended to the stream
`incident-<id>` at the version read. Two actions at once on one incident are taken one after
the other; the second is judged on the state the first left, and refused if no longer
allowed. The free text (summary, notes, root cause, remediation) stays in incident's table;
the events say what was done, by whom and when.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_response import (
    CauseAttached,
    ContainmentNeedsOperator,
    ContainmentRequested,
    ExposureSummaryAttached,
    IncidentAnalysed,
    IncidentClosed,
    IncidentRegraded,
    IncidentRemediated,
    IncidentReported,
    IncidentTriaged,
    RegulatorReportFiled,
    containment_handoff_stream,
    incident_stream,
)
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, LegalBasis, utcnow
from expensura_events.metrics import Reading
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, LegalGround, Purpose
from expensura_incident.containment import store as containment_store
from expensura_incident.containment.domain import Outcome
from expensura_incident.grading.domain import Assessment, Severity
from expensura_incident.regimes.domain import (
    BY_CODE,
    Exposure,
    FtcSafeguardsReport,
    applicable_regimes,
    draft_ftc_report,
)
from expensura_incident.response import store
from expensura_incident.response.domain import (
    OPERATOR_OWNERS,
    Action,
    Analyse,
    Close,
    Contain,
    Containment,
    Incident,
    IncidentState,
    RegimeDeadline,
    Regrade,
    Remediate,
    Report,
    Source,
    Triage,
    VerisAction,
    apply,
    check_filing,
    ensure_open,
    fold,
    regulator_deadlines,
    responder_role,
)
from expensura_incident.settings import incident_settings

PURPOSE = Purpose.SECURITY
# A financial institution's information security programme includes a written incident
# response plan (the Safeguards Rule); the regulators' reports are legal compliance.
BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="16 CFR 314.4(h)")
INSTITUTION_NAME = "Expensura"


class UnknownIncident(LookupError):
    """No incident with that id."""


class ConcurrentChange(Exception):
    """The incident moved on while the action was decided: nothing was changed."""


class NoExposure(Exception):
    """No exposure summary attached yet: no regime, no deadline, no draft."""


@dataclass(frozen=True)
class IncidentSummary:
    """An open incident as the list shows it: no free text but its summary."""

    incident_id: UUID
    state: str
    severity: str | None
    score: float | None
    summary: str
    reported_at: datetime
    alert: bool  # a regulator's deadline is 75 % gone and its report not filed


@dataclass(frozen=True)
class IncidentView:
    incident_id: UUID
    incident: Incident
    timeline: list[store.TimelineEntry]
    exposure: Exposure | None
    exposure_attached_at: datetime | None
    deadlines: tuple[RegimeDeadline, ...]
    reports: list[store.FiledReport]
    version: int
    outcomes: Mapping[UUID, Outcome] = field(default_factory=dict)  # by request event id

    def containment(self) -> list[tuple[Contain, Outcome | None]]:
        """Each containment request in order, with its owner's outcome once carried out."""
        return [
            (e.action, self.outcomes.get(e.event_id))
            for e in self.timeline
            if isinstance(e.action, Contain)
        ]


def _officer(staff_id: str, roles: frozenset[str]) -> Actor:
    """The acting officer; NotOnResponseTeam for anyone else (the views check it too)."""
    return Actor(kind=ActorKind.STAFF, id=staff_id, role=responder_role(roles).value)


def _grade(assessment: Assessment) -> dict[str, object]:
    c = assessment.circumstances
    return {
        "severity": assessment.severity.value,
        "score": assessment.score,
        "data_sets": [
            d.category.value if d.adjustment is None else f"{d.category}/{d.adjustment}"
            for d in assessment.data
        ],
        "identification": assessment.identification.value,
        "confidentiality": c.confidentiality.value,
        "integrity": c.integrity.value,
        "availability": c.availability.value,
        "malicious": c.malicious,
    }


def event_for(incident_id: UUID, action: Action) -> DomainEvent:
    """The event that records `action`: what was done, never its free text."""
    match action:
        case Report():
            return IncidentReported(incident_id=incident_id, source=action.source)
        case Triage():
            return IncidentTriaged(
                incident_id=incident_id, category=action.category, **_grade(action.assessment)
            )
        case Regrade():
            return IncidentRegraded(incident_id=incident_id, **_grade(action.assessment))
        case Contain():
            return ContainmentRequested(
                incident_id=incident_id,
                measure=action.measure,
                target=action.target,
                owner=action.owner,
            )
        case Analyse():
            return IncidentAnalysed(incident_id=incident_id)
        case Remediate():
            return IncidentRemediated(incident_id=incident_id)
        case Close():
            return IncidentClosed(incident_id=incident_id)
    raise TypeError(f"no event for {action.kind}")


def _envelope(
    rt: ServiceRuntime,
    incident_id: UUID,
    event: DomainEvent,
    actor: Actor,
    purpose: Purpose = PURPOSE,
    basis: LegalBasis = BASIS,
    causation_id: UUID | None = None,
) -> EventEnvelope:
    return rt.envelope(
        event,
        stream_id=incident_stream(incident_id),
        subject_id=None,  # an incident is about the lender's systems, not one person
        actor=actor,
        purpose=purpose,
        legal_basis=basis,
        causation_id=causation_id,
    )


async def _view(conn: AsyncConnection, incident_id: UUID, now: datetime) -> IncidentView:
    row = await store.incident(conn, incident_id)
    if row is None:
        raise UnknownIncident(str(incident_id))
    entries = await store.timeline(conn, incident_id)
    filed = await store.reports(conn, incident_id)
    deadlines = (
        ()
        if row.exposure is None
        else regulator_deadlines(row.exposure, row.reported_at, now, [r.regime for r in filed])
    )
    return IncidentView(
        incident_id=incident_id,
        incident=fold(e.action for e in entries if e.action is not None),
        timeline=entries,
        exposure=row.exposure,
        exposure_attached_at=row.exposure_attached_at,
        deadlines=deadlines,
        reports=filed,
        version=row.version,
        outcomes=await containment_store.outcomes(conn, incident_id),
    )


# --- reading -----------------------------------------------------------------------------


async def require_incident(rt: ServiceRuntime, incident_id: UUID) -> None:
    """Raises UnknownIncident unless the incident was reported: what acts for an incident (a
    blast radius, breach notices) asks first, so that an unknown id changes nothing."""
    async with rt.engine.connect() as conn:
        if await store.incident(conn, incident_id) is None:
            raise UnknownIncident(str(incident_id))


async def incident_view(
    rt: ServiceRuntime, incident_id: UUID, now: datetime | None = None
) -> IncidentView:
    """The incident, its timeline, and once an exposure summary is attached, the regimes it
    falls under with their deadlines and alerts at `now`. Raises UnknownIncident."""
    async with rt.engine.connect() as conn:
        return await _view(conn, incident_id, now or utcnow())


async def open_incidents(rt: ServiceRuntime, now: datetime | None = None) -> list[IncidentSummary]:
    """The incidents not closed, oldest first, each with whether a deadline alerts."""
    at = now or utcnow()
    async with rt.engine.connect() as conn:
        rows = await store.open_incidents(conn)
        out = []
        for row in rows:
            alert = False
            if row.exposure is not None:
                filed = [r.regime for r in await store.reports(conn, row.incident_id)]
                alert = any(
                    d.alert for d in regulator_deadlines(row.exposure, row.reported_at, at, filed)
                )
            out.append(
                IncidentSummary(
                    incident_id=row.incident_id,
                    state=row.state.value,
                    severity=row.severity,
                    score=row.score,
                    summary=row.summary,
                    reported_at=row.reported_at,
                    alert=alert,
                )
            )
    return out


# --- the workflow ------------------------------------------------------------------------


async def report_incident(
    rt: ServiceRuntime,
    *,
    summary: str,
    source: Source,
    staff_id: str,
    roles: frozenset[str],
    note: str = "",
) -> IncidentView:
    """Report an incident (its discovery: deadlines run from now). Raises InvalidAction
    (an empty summary), NotOnResponseTeam."""
    return await raise_incident(
        rt, summary=summary, source=source, actor=_officer(staff_id, roles), note=note
    )


async def raise_incident(
    rt: ServiceRuntime, *, summary: str, source: Source, actor: Actor, note: str = ""
) -> IncidentView:
    """Report an incident as `actor`: an officer, or a system (`Actor.system(...)`) raising
    one automatically (a failed `log verify`, a forged event, a risk signal)."""
    async with rt.engine.begin() as conn:
        incident_id, now = await raise_in(
            rt, conn, summary=summary, source=source, actor=actor, note=note
        )
        return await _view(conn, incident_id, now)


async def raise_in(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    *,
    summary: str,
    source: Source,
    actor: Actor,
    note: str = "",
    causation_id: UUID | None = None,
) -> tuple[UUID, datetime]:
    """`raise_incident` in the caller's transaction (a projection's, raising from an
    event: `causation_id`); the new incident's id and discovery time."""
    incident_id = uuid4()
    now = utcnow()
    report = Report(actor=actor.id, at=now, note=note, source=source, summary=summary)
    incident = apply(None, report)
    envelope = _envelope(
        rt, incident_id, event_for(incident_id, report), actor, causation_id=causation_id
    )
    await store.add_incident(conn, incident_id, incident, now)
    await store.add_entry(
        conn,
        incident_id,
        seq=1,
        kind=report.kind.value,
        actor=actor.id,
        role=actor.role,
        at=now,
        detail=store.action_json(report),
        event_id=envelope.event_id,
    )
    await rt.append(conn, [envelope], expected_version=0)
    return incident_id, now


async def attach_cause(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    incident_id: UUID,
    *,
    source: Source,
    actor: Actor,
    detail: dict[str, Any],
    causation_id: UUID | None = None,
) -> bool:
    """Attach a further occurrence of an automatically raised incident's cause as a
    timeline entry (`incident.CauseAttached`), in the caller's transaction. False, and
    nothing written, if the incident is closed (the caller raises a new one)."""
    row = await _locked(conn, incident_id)
    if row.state is IncidentState.CLOSED:
        return False
    now = utcnow()
    event = CauseAttached(incident_id=incident_id, source=source)
    envelope = _envelope(rt, incident_id, event, actor, causation_id=causation_id)
    if not await store.moved_on(conn, incident_id, row.version, {}, now):
        raise ConcurrentChange(str(incident_id))
    await store.add_entry(
        conn,
        incident_id,
        seq=row.version + 1,
        kind=store.ATTACH_CAUSE,
        actor=actor.id,
        role=actor.role,
        at=now,
        detail=detail,
        event_id=envelope.event_id,
    )
    await rt.append(conn, [envelope], expected_version=row.version)
    return True


async def _locked(conn: AsyncConnection, incident_id: UUID) -> Any:
    """The incident's row, locked for this transaction. Raises UnknownIncident."""
    row = await store.incident(conn, incident_id, lock=True)
    if row is None:
        raise UnknownIncident(str(incident_id))
    return row


async def _recorded(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    incident_id: UUID,
    row: Any,
    envelope: EventEnvelope,
    actor: Actor,
    *,
    kind: str,
    detail: dict[str, Any],
    at: datetime,
) -> IncidentView:
    """A step on the locked incident `row`: its timeline entry and its event at the next
    version, then the incident as it stands at `at`."""
    await store.add_entry(
        conn,
        incident_id,
        seq=row.version + 1,
        kind=kind,
        actor=actor.id,
        role=actor.role,
        at=at,
        detail=detail,
        event_id=envelope.event_id,
    )
    await rt.append(conn, [envelope], expected_version=row.version)
    return await _view(conn, incident_id, at)


async def _act(
    rt: ServiceRuntime,
    incident_id: UUID,
    staff_id: str,
    roles: frozenset[str],
    build: Callable[[str, datetime], Action],
) -> IncidentView:
    actor = _officer(staff_id, roles)
    async with rt.engine.begin() as conn:
        row = await _locked(conn, incident_id)
        entries = await store.timeline(conn, incident_id)
        current = fold(e.action for e in entries if e.action is not None)
        now = utcnow()
        action = build(actor.id, now)
        after = apply(current, action)  # IllegalTransition, ActionOutOfOrder
        envelope = _envelope(rt, incident_id, event_for(incident_id, action), actor)
        if not await store.advance(conn, incident_id, row.version, after, now):
            raise ConcurrentChange(str(incident_id))
        view = await _recorded(
            rt,
            conn,
            incident_id,
            row,
            envelope,
            actor,
            kind=action.kind.value,
            detail=store.action_json(action),
            at=now,
        )
        if isinstance(action, Contain) and action.owner in OPERATOR_OWNERS:
            await _hand_to_operator(rt, conn, incident_id, action, actor, envelope)
        return view


async def _hand_to_operator(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    incident_id: UUID,
    action: Contain,
    actor: Actor,
    request: EventEnvelope,
) -> None:
    """No service will carry out `request`: say so in the log, in its transaction, on a
    stream of its own (the incident's stream has one event per action)."""
    handoff = rt.envelope(
        ContainmentNeedsOperator(
            incident_id=incident_id,
            measure=action.measure,
            target=action.target,
            owner=action.owner,
        ),
        stream_id=containment_handoff_stream(request.event_id),
        subject_id=None,
        actor=actor,
        purpose=PURPOSE,
        legal_basis=BASIS,
        correlation_id=request.correlation_id,
        causation_id=request.event_id,
    )
    await rt.append(conn, [handoff], expected_version=0)


async def triage(
    rt: ServiceRuntime,
    incident_id: UUID,
    *,
    category: VerisAction,
    assessment: Assessment,
    staff_id: str,
    roles: frozenset[str],
    note: str = "",
) -> IncidentView:
    return await _act(
        rt,
        incident_id,
        staff_id,
        roles,
        lambda who, at: Triage(
            actor=who, at=at, note=note, category=category, assessment=assessment
        ),
    )


async def regrade(
    rt: ServiceRuntime,
    incident_id: UUID,
    *,
    assessment: Assessment,
    staff_id: str,
    roles: frozenset[str],
    note: str = "",
) -> IncidentView:
    return await _act(
        rt,
        incident_id,
        staff_id,
        roles,
        lambda who, at: Regrade(actor=who, at=at, note=note, assessment=assessment),
    )


async def contain(
    rt: ServiceRuntime,
    incident_id: UUID,
    *,
    measure: Containment,
    target: str,
    staff_id: str,
    roles: frozenset[str],
    note: str = "",
    owner: str = "",
) -> IncidentView:
    """Ask the owning service for one damage-control measure (recorded as
    `incident.ContainmentRequested`; the owner carries it out). `owner`: one of the
    measure's owners; none named, its default. Raises InvalidAction for another."""
    return await _act(
        rt,
        incident_id,
        staff_id,
        roles,
        lambda who, at: Contain(
            actor=who, at=at, note=note, measure=measure, target=target, owner=owner
        ),
    )


async def analyse(
    rt: ServiceRuntime,
    incident_id: UUID,
    *,
    root_cause: str,
    staff_id: str,
    roles: frozenset[str],
    note: str = "",
) -> IncidentView:
    return await _act(
        rt,
        incident_id,
        staff_id,
        roles,
        lambda who, at: Analyse(actor=who, at=at, note=note, root_cause=root_cause),
    )


async def remediate(
    rt: ServiceRuntime,
    incident_id: UUID,
    *,
    measure: str,
    staff_id: str,
    roles: frozenset[str],
    note: str = "",
) -> IncidentView:
    return await _act(
        rt,
        incident_id,
        staff_id,
        roles,
        lambda who, at: Remediate(actor=who, at=at, note=note, measure=measure),
    )


async def close(
    rt: ServiceRuntime,
    incident_id: UUID,
    *,
    staff_id: str,
    roles: frozenset[str],
    note: str = "",
) -> IncidentView:
    return await _act(
        rt, incident_id, staff_id, roles, lambda who, at: Close(actor=who, at=at, note=note)
    )


# --- exposure and regulators (SEC-5) -------------------------------------------------------


def exposure_event(incident_id: UUID, exposure: Exposure) -> ExposureSummaryAttached:
    applicable = applicable_regimes(exposure)
    return ExposureSummaryAttached(
        incident_id=incident_id,
        subjects=sum(g.subjects for g in exposure.groups),
        notifiable_subjects=exposure.notifiable(),
        residences=sorted({g.residence for g in exposure.groups}),
        information_types=list(exposure.information_types),
        regimes=[a.regime.code for a in applicable],
        reports_due=[a.regime.code for a in applicable if a.report_due],
    )


async def attach_exposure(
    rt: ServiceRuntime,
    incident_id: UUID,
    exposure: Exposure,
    *,
    staff_id: str,
    roles: frozenset[str],
) -> IncidentView:
    """Attach a blast radius's summary (replacing an earlier one): the incident then shows
    the regimes it falls under and their deadlines. Raises UnknownIncident, IncidentIsClosed."""
    actor = _officer(staff_id, roles)
    async with rt.engine.begin() as conn:
        row = await _locked(conn, incident_id)
        entries = await store.timeline(conn, incident_id)
        ensure_open(fold(e.action for e in entries if e.action is not None))
        now = utcnow()
        event = exposure_event(incident_id, exposure)
        envelope = _envelope(rt, incident_id, event, actor)
        if not await store.attach_exposure(conn, incident_id, row.version, exposure, now):
            raise ConcurrentChange(str(incident_id))
        return await _recorded(
            rt,
            conn,
            incident_id,
            row,
            envelope,
            actor,
            at=now,
            kind=store.ATTACH_EXPOSURE,
            detail=event.model_dump(mode="json", exclude={"incident_id"}),
        )


async def file_report(
    rt: ServiceRuntime,
    incident_id: UUID,
    *,
    regime: str,
    reference: str | None,
    staff_id: str,
    roles: frozenset[str],
) -> IncidentView:
    """Record that an officer filed the incident's report with `regime`'s regulator: its
    deadline stops alerting. Raises UnknownIncident, NoReportDue, ReportAlreadyFiled."""
    actor = _officer(staff_id, roles)
    async with rt.engine.begin() as conn:
        row = await _locked(conn, incident_id)
        filed = await store.reports(conn, incident_id)
        check_filing(row.exposure, regime, [r.regime for r in filed])
        now = utcnow()
        event = RegulatorReportFiled(incident_id=incident_id, regime=regime, reference=reference)
        envelope = _envelope(
            rt,
            incident_id,
            event,
            actor,
            Purpose.LEGAL_COMPLIANCE,
            LegalBasis(ground=LegalGround.OTHER_LAW, reference=BY_CODE[regime].citation),
        )
        if not await store.moved_on(conn, incident_id, row.version, {}, now):
            raise ConcurrentChange(str(incident_id))
        await store.add_report(
            conn,
            incident_id,
            regime=regime,
            filed_by=actor.id,
            filed_at=now,
            reference=reference,
            event_id=envelope.event_id,
        )
        return await _recorded(
            rt,
            conn,
            incident_id,
            row,
            envelope,
            actor,
            at=now,
            kind=store.FILE_REPORT,
            detail={"regime": regime, "reference": reference},
        )


def _description(view: IncidentView) -> str:
    """A neutral first line for the report's general description (the officer completes
    it): the category, the containment, the state. No free text of the team's."""
    incident = view.incident
    category = "an unclassified" if incident.category is None else f"a {incident.category}"
    measures = ", ".join(f"{c.measure} ({c.owner})" for c in incident.containment) or "none yet"
    return (
        f"{category.capitalize()} incident discovered on {incident.reported_at.date()}."
        f" Containment: {measures}. Response state: {incident.state}."
    )


async def ftc_draft(rt: ServiceRuntime, incident_id: UUID) -> FtcSafeguardsReport:
    """The FTC Safeguards Rule report's draft from the attached exposure summary. Raises
    UnknownIncident, NoExposure, NotReportable (fewer than 500 consumers)."""
    view = await incident_view(rt, incident_id)
    if view.exposure is None:
        raise NoExposure("attach the blast radius's exposure summary first")
    contact = ", ".join(incident_settings(rt).letter_from.splitlines())
    return draft_ftc_report(
        view.exposure,
        discovered_at=view.incident.reported_at,
        institution_name=INSTITUTION_NAME,
        institution_contact=contact,
        description=_description(view),
    )


UNGRADED = "ungraded"  # the severity label of an incident not graded yet


async def readings(rt: ServiceRuntime) -> list[Reading]:
    """Incident's gauges at a scrape of `/metrics`: open incidents per severity, every
    severity present (0 when none)."""
    async with rt.engine.connect() as conn:
        counts = await store.open_by_severity(conn)
    severities = [*(s.value for s in Severity), UNGRADED]
    by_label = {UNGRADED if k is None else k: v for k, v in counts.items()}
    return [
        Reading("expensura_incidents_open", by_label.get(s, 0), {"severity": s}) for s in severities
    ]
