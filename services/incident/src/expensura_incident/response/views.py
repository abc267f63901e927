"""Incident response over HTTP, for the response team only (staff with MFA and the security
or privacy officer's role, SEC-4): report, list and read incidents with their timeline,
take the workflow's actions, attach an exposure summary, see the regulators' deadlines,
draft the FTC's report and record a filed report (SEC-5).

Bad input: 422 and nothing changed. An action the incident's state does not allow: 409."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field

from expensura_events.auth import Principal
from expensura_events.web.auth import Runtime, staff_with
from expensura_events.web.problems import Conflict, NotFound, Problem
from expensura_incident.grading.domain import (
    Adjustment,
    AdjustmentNotForCategory,
    Assessment,
    Availability,
    Circumstances,
    Confidentiality,
    DataCategory,
    DataSet,
    EaseOfIdentification,
    Integrity,
)
from expensura_incident.regimes.domain import BY_CODE, Exposed, Exposure, NotReportable, Protection
from expensura_incident.response import service
from expensura_incident.response.domain import (
    RESPONSE_TEAM,
    ActionOutOfOrder,
    Containment,
    IllegalTransition,
    IncidentIsClosed,
    InvalidAction,
    NoReportDue,
    ReportAlreadyFiled,
    Source,
    VerisAction,
)
from expensura_incident.response.service import (
    ConcurrentChange,
    IncidentView,
    NoExposure,
    UnknownIncident,
)

router = APIRouter(tags=["incident response"])

Officer = Annotated[Principal, Depends(staff_with(*(r.value for r in RESPONSE_TEAM)))]
Text = Annotated[str, Field(min_length=1, max_length=5000)]
Note = Annotated[str, Field(max_length=5000)]
E = TypeVar("E", bound=Enum)
RESPONSES: dict[int | str, dict[str, Any]] = {403: {}, 404: {}, 409: {}, 422: {}}


class InvalidActionProblem(Problem):
    status, title = 422, "Invalid action"


class IllegalTransitionProblem(Problem):
    status, title = 409, "Not allowed in the incident's state"


# --- requests ------------------------------------------------------------------------------

Identification = Literal["negligible", "limited", "significant", "maximum"]
ConfidentialityLoss = Literal["not-lost", "known-recipients", "unknown-recipients"]
IntegrityLoss = Literal["not-lost", "altered-recoverable", "altered-unrecoverable"]
AvailabilityLoss = Literal["not-lost", "temporary", "full"]


def _member(enum: type[E], name: str) -> E:
    """The member named `name` ("known-recipients" is KNOWN_RECIPIENTS)."""
    return enum[name.upper().replace("-", "_")]


class DataSetIn(BaseModel):
    category: DataCategory
    adjustment: Adjustment | None = None


class AssessmentIn(BaseModel):
    """ENISA's inputs: the breached data sets (each with at most one of its category's
    adjustments), the ease of identification, the circumstances of the breach."""

    data: Annotated[list[DataSetIn], Field(min_length=1, max_length=4)]
    identification: Identification
    confidentiality: ConfidentialityLoss = "not-lost"
    integrity: IntegrityLoss = "not-lost"
    availability: AvailabilityLoss = "not-lost"
    malicious: bool = False

    def assessment(self) -> Assessment:
        """Raises AdjustmentNotForCategory."""
        return Assessment(
            tuple(DataSet(d.category, d.adjustment) for d in self.data),
            _member(EaseOfIdentification, self.identification),
            Circumstances(
                _member(Confidentiality, self.confidentiality),
                _member(Integrity, self.integrity),
                _member(Availability, self.availability),
                self.malicious,
            ),
        )


class ReportIn(BaseModel):
    summary: Text
    source: Source = Source.STAFF
    note: Note = ""


class TriageIn(BaseModel):
    category: VerisAction
    assessment: AssessmentIn
    note: Note = ""


class RegradeIn(BaseModel):
    assessment: AssessmentIn
    note: Note = ""


class ContainmentIn(BaseModel):
    measure: Containment
    target: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="the partner credential's, staff member's or key's id"
    )
    owner: Annotated[str, Field(min_length=1, max_length=50)] | None = Field(
        default=None,
        description="who carries it out, one of the measure's owners (rotate-key: `identity` "
        "for its access-token signing keys, the target their `kid`; by default `keystore`, "
        "an operator's handoff)",
    )
    note: Note = ""


class AnalysisIn(BaseModel):
    root_cause: Text
    note: Note = ""


class RemediationIn(BaseModel):
    measure: Text
    note: Note = ""


class ClosureIn(BaseModel):
    note: Note = ""


class ExposedIn(BaseModel):
    residence: Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")] = Field(
        description='ISO 3166-2 for a U.S. state ("US-CA"), ISO 3166-1 alpha-2 otherwise'
    )
    protection: Protection
    subjects: Annotated[int, Field(ge=0, le=1_000_000_000)]


class ExposureIn(BaseModel):
    """A blast radius's summary: exposed subjects per residence, each under the weakest
    protection of its exposed values, counted once."""

    groups: Annotated[list[ExposedIn], Field(max_length=1000)]
    information_types: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=40)
    ] = []
    first_at: AwareDatetime | None = None
    last_at: AwareDatetime | None = None

    def exposure(self) -> Exposure:
        return Exposure(
            groups=tuple(Exposed(g.residence, g.protection, g.subjects) for g in self.groups),
            information_types=tuple(self.information_types),
            first_at=self.first_at,
            last_at=self.last_at,
        )


class RegulatorReportIn(BaseModel):
    regime: Annotated[str, Field(min_length=1, max_length=50)] = Field(
        description="the regime's code: " + ", ".join(BY_CODE)
    )
    reference: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="the regulator's case or confirmation number"
    )


# --- answers -------------------------------------------------------------------------------


class EntryOut(BaseModel):
    seq: int
    kind: str
    actor: str
    role: str | None
    at: datetime
    detail: dict[str, Any]


class RegimeOut(BaseModel):
    code: str
    name: str
    regulator: str
    citation: str
    subjects: int
    report_due: bool
    due_by: datetime | None
    residents_due_by: datetime | None
    filed: bool
    alert: bool


class ReportOut(BaseModel):
    regime: str
    filed_by: str
    filed_at: datetime
    reference: str | None


class ContainmentOut(BaseModel):
    measure: Containment
    target: str
    owner: str
    requested_by: str
    requested_at: datetime
    # Set once the owner's signed event says it was done (SEC-4): when, and that event.
    carried_out_at: datetime | None = None
    carried_out_event_id: UUID | None = None


class IncidentOut(BaseModel):
    incident_id: UUID
    state: str
    source: Source
    summary: str
    reported_by: str
    reported_at: datetime
    category: VerisAction | None
    severity: str | None
    score: float | None
    containment: list[ContainmentOut]
    root_cause: str | None
    remediation: list[str]
    closed_at: datetime | None
    timeline: list[EntryOut]
    exposure: ExposureIn | None
    regimes: list[RegimeOut]
    reports: list[ReportOut]


class IncidentListed(BaseModel):
    incident_id: UUID
    state: str
    severity: str | None
    score: float | None
    summary: str
    reported_at: datetime
    alert: bool


class IncidentsOut(BaseModel):
    incidents: list[IncidentListed]


class FtcReportOut(BaseModel):
    """16 CFR 314.4(j)(1)-(6), for an officer to complete and file on the FTC's form."""

    institution_name: str
    institution_contact: str
    information_types: list[str]
    event_from: date | None
    event_to: date | None
    consumers: int
    description: str
    law_enforcement_determination: bool
    law_enforcement_contact: str | None
    discovered_at: datetime
    due_by: datetime


def _out(view: IncidentView) -> IncidentOut:
    incident = view.incident
    exposure = view.exposure
    return IncidentOut(
        incident_id=view.incident_id,
        state=incident.state.value,
        source=incident.source,
        summary=incident.summary,
        reported_by=incident.reported_by,
        reported_at=incident.reported_at,
        category=incident.category,
        severity=None if incident.severity is None else incident.severity.value,
        score=None if incident.assessment is None else incident.assessment.score,
        containment=[
            ContainmentOut(
                measure=c.measure,
                target=c.target,
                owner=c.owner,
                requested_by=c.actor,
                requested_at=c.at,
                carried_out_at=None if done is None else done.carried_out_at,
                carried_out_event_id=None if done is None else done.event_id,
            )
            for c, done in view.containment()
        ],
        root_cause=incident.root_cause,
        remediation=list(incident.remediation),
        closed_at=incident.closed_at,
        timeline=[
            EntryOut(seq=e.seq, kind=e.kind, actor=e.actor, role=e.role, at=e.at, detail=e.detail)
            for e in view.timeline
        ],
        exposure=None
        if exposure is None
        else ExposureIn(
            groups=[
                ExposedIn(residence=g.residence, protection=g.protection, subjects=g.subjects)
                for g in exposure.groups
            ],
            information_types=list(exposure.information_types),
            first_at=exposure.first_at,
            last_at=exposure.last_at,
        ),
        regimes=[
            RegimeOut(
                code=d.regime.code,
                name=d.regime.name,
                regulator=d.regime.regulator,
                citation=d.regime.citation,
                subjects=d.subjects,
                report_due=d.report_due,
                due_by=d.due_by,
                residents_due_by=d.residents_due_by,
                filed=d.filed,
                alert=d.alert,
            )
            for d in view.deadlines
        ],
        reports=[
            ReportOut(
                regime=r.regime, filed_by=r.filed_by, filed_at=r.filed_at, reference=r.reference
            )
            for r in view.reports
        ],
    )


async def _answer(call: Any) -> IncidentOut:
    """The one mapping of the workflow's refusals to HTTP."""
    try:
        return _out(await call)
    except UnknownIncident:
        raise NotFound("No incident with that id.") from None
    except (InvalidAction, AdjustmentNotForCategory) as exc:
        raise InvalidActionProblem(f"{exc}; nothing was changed.") from None
    except (IllegalTransition, IncidentIsClosed) as exc:
        raise IllegalTransitionProblem(f"{exc}; nothing was changed.") from None
    except (ActionOutOfOrder, ConcurrentChange, NoReportDue, ReportAlreadyFiled) as exc:
        raise Conflict(f"{exc}; nothing was changed.") from None


def _assessment(body: AssessmentIn) -> Assessment:
    try:
        return body.assessment()
    except AdjustmentNotForCategory as exc:
        raise InvalidActionProblem(f"{exc}; nothing was changed.") from None


# --- routes --------------------------------------------------------------------------------


@router.post("/v1/incidents", status_code=201, responses=RESPONSES)
async def report_incident(body: ReportIn, officer: Officer, rt: Runtime) -> IncidentOut:
    """Report an incident: its discovery, from which the regulators' deadlines run."""
    return await _answer(
        service.report_incident(
            rt,
            summary=body.summary,
            source=body.source,
            note=body.note,
            staff_id=officer.id,
            roles=officer.roles,
        )
    )


@router.get("/v1/incidents", responses={403: {}})
async def incidents(officer: Officer, rt: Runtime) -> IncidentsOut:
    """The open incidents, oldest first, each with whether a regulator's deadline alerts."""
    return IncidentsOut(
        incidents=[
            IncidentListed(
                incident_id=i.incident_id,
                state=i.state,
                severity=i.severity,
                score=i.score,
                summary=i.summary,
                reported_at=i.reported_at,
                alert=i.alert,
            )
            for i in await service.open_incidents(rt)
        ]
    )


@router.get("/v1/incidents/{incident_id}", responses={403: {}, 404: {}})
async def incident(incident_id: UUID, officer: Officer, rt: Runtime) -> IncidentOut:
    """The incident: state, severity, timeline (each action's actor and time), and once an
    exposure summary is attached, the regimes with their deadlines and alerts."""
    return await _answer(service.incident_view(rt, incident_id))


@router.post("/v1/incidents/{incident_id}/triage", responses=RESPONSES)
async def triage(incident_id: UUID, body: TriageIn, officer: Officer, rt: Runtime) -> IncidentOut:
    return await _answer(
        service.triage(
            rt,
            incident_id,
            category=body.category,
            assessment=_assessment(body.assessment),
            note=body.note,
            staff_id=officer.id,
            roles=officer.roles,
        )
    )


@router.post("/v1/incidents/{incident_id}/regrade", responses=RESPONSES)
async def regrade(incident_id: UUID, body: RegradeIn, officer: Officer, rt: Runtime) -> IncidentOut:
    return await _answer(
        service.regrade(
            rt,
            incident_id,
            assessment=_assessment(body.assessment),
            note=body.note,
            staff_id=officer.id,
            roles=officer.roles,
        )
    )


@router.post("/v1/incidents/{incident_id}/containment", responses=RESPONSES)
async def containment(
    incident_id: UUID, body: ContainmentIn, officer: Officer, rt: Runtime
) -> IncidentOut:
    """Ask for one damage-control measure; the owning service carries it out."""
    return await _answer(
        service.contain(
            rt,
            incident_id,
            measure=body.measure,
            target=body.target,
            owner=body.owner or "",
            note=body.note,
            staff_id=officer.id,
            roles=officer.roles,
        )
    )


@router.post("/v1/incidents/{incident_id}/analysis", responses=RESPONSES)
async def analysis(
    incident_id: UUID, body: AnalysisIn, officer: Officer, rt: Runtime
) -> IncidentOut:
    return await _answer(
        service.analyse(
            rt,
            incident_id,
            root_cause=body.root_cause,
            note=body.note,
            staff_id=officer.id,
            roles=officer.roles,
        )
    )


@router.post("/v1/incidents/{incident_id}/remediation", responses=RESPONSES)
async def remediation(
    incident_id: UUID, body: RemediationIn, officer: Officer, rt: Runtime
) -> IncidentOut:
    return await _answer(
        service.remediate(
            rt,
            incident_id,
            measure=body.measure,
            note=body.note,
            staff_id=officer.id,
            roles=officer.roles,
        )
    )


@router.post("/v1/incidents/{incident_id}/closure", responses=RESPONSES)
async def closure(incident_id: UUID, body: ClosureIn, officer: Officer, rt: Runtime) -> IncidentOut:
    return await _answer(
        service.close(rt, incident_id, note=body.note, staff_id=officer.id, roles=officer.roles)
    )


@router.post("/v1/incidents/{incident_id}/exposure", responses=RESPONSES)
async def exposure(
    incident_id: UUID, body: ExposureIn, officer: Officer, rt: Runtime
) -> IncidentOut:
    """Attach a blast radius's summary (replacing an earlier one)."""
    return await _answer(
        service.attach_exposure(
            rt, incident_id, body.exposure(), staff_id=officer.id, roles=officer.roles
        )
    )


@router.get("/v1/incidents/{incident_id}/ftc-report", responses={403: {}, 404: {}, 409: {}})
async def ftc_report(incident_id: UUID, officer: Officer, rt: Runtime) -> FtcReportOut:
    """The FTC Safeguards Rule report's draft; 409 without an exposure summary, or below
    500 notifiable consumers (no notification event)."""
    try:
        draft = await service.ftc_draft(rt, incident_id)
    except UnknownIncident:
        raise NotFound("No incident with that id.") from None
    except (NoExposure, NotReportable) as exc:
        raise Conflict(str(exc)) from None
    return FtcReportOut(
        institution_name=draft.institution_name,
        institution_contact=draft.institution_contact,
        information_types=list(draft.information_types),
        event_from=draft.event_from,
        event_to=draft.event_to,
        consumers=draft.consumers,
        description=draft.description,
        law_enforcement_determination=draft.law_enforcement_determination,
        law_enforcement_contact=draft.law_enforcement_contact,
        discovered_at=draft.discovered_at,
        due_by=draft.due_by,
    )


@router.post("/v1/incidents/{incident_id}/regulator-reports", status_code=201, responses=RESPONSES)
async def regulator_report(
    incident_id: UUID, body: RegulatorReportIn, officer: Officer, rt: Runtime
) -> IncidentOut:
    """Record that the report to a regime's regulator was filed (once per regime)."""
    if body.regime not in BY_CODE:
        raise InvalidActionProblem(
            f"no regime {body.regime!r}: one of {', '.join(BY_CODE)}; nothing was changed."
        )
    return await _answer(
        service.file_report(
            rt,
            incident_id,
            regime=body.regime,
            reference=body.reference,
            staff_id=officer.id,
            roles=officer.roles,
        )
    )
