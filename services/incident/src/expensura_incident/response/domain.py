"""The incident response workflow (SEC-4): an incident is reported, triaged (a VERIS category
and an ENISA severity), contained (damage control), analysed (its root cause), remediated
and closed. Every step is an action with its actor and time; the incident is the fold of its
actions, and its timeline is those actions in order.

    (none) ──report──► reported ──triage──► triaged ──contain──► contained ──analyse──► analysed
                                              │ ▲                  │ ▲                   │
                                              └─┘ regrade          └─┘ contain, regrade  │ remediate
                                                                                         ▼
                                closed ◄──close── remediated ◄─┐ remediate, regrade
                                                       └───────┘

Each containment measure (revoke a partner credential, end a staff member's sessions, rotate
a key) is its own `contain` action: the owning service carries it out; the incident records
that it was asked for, by whom and when. A grade can be revised (`regrade`) while the
incident is open, as the analysis and the blast radius tell more.

Once an exposure summary (a blast radius's counts) is attached, the regimes it falls under
each have a deadline from the incident's discovery (its report), and an alert from 75 % of
the period until the regulator's report is filed (`regulator_deadlines`).

Pure: no I/O. `store.py`, `service.py` and `views.py` apply it. Actors are opaque ids (a
staff member's, or `system:<source>` for an incident raised automatically, e.g.
`system:log-verify`), never a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from expensura_events.catalog.incident_response import (
    ContainmentMeasure,
    IncidentSource,
)
from expensura_events.catalog.incident_response import VerisAction as VerisAction
from expensura_events.obligations import enforces
from expensura_events.vocabulary import StaffRole
from expensura_incident.grading.domain import Assessment, Severity
from expensura_incident.regimes.domain import (
    Exposure,
    Regime,
    alert_due,
    applicable_regimes,
    deadline,
    residents_deadline,
)


class IncidentState(StrEnum):
    REPORTED = "reported"
    TRIAGED = "triaged"
    CONTAINED = "contained"
    ANALYSED = "analysed"
    REMEDIATED = "remediated"
    CLOSED = "closed"


class ActionKind(StrEnum):
    REPORT = "report"
    TRIAGE = "triage"
    REGRADE = "regrade"
    CONTAIN = "contain"
    ANALYSE = "analyse"
    REMEDIATE = "remediate"
    CLOSE = "close"


# (state before, action) → state after. `None`: no incident yet. Anything else is refused.
TRANSITIONS: Mapping[tuple[IncidentState | None, ActionKind], IncidentState] = {
    (None, ActionKind.REPORT): IncidentState.REPORTED,
    (IncidentState.REPORTED, ActionKind.TRIAGE): IncidentState.TRIAGED,
    (IncidentState.TRIAGED, ActionKind.REGRADE): IncidentState.TRIAGED,
    (IncidentState.TRIAGED, ActionKind.CONTAIN): IncidentState.CONTAINED,
    (IncidentState.CONTAINED, ActionKind.CONTAIN): IncidentState.CONTAINED,
    (IncidentState.CONTAINED, ActionKind.REGRADE): IncidentState.CONTAINED,
    (IncidentState.CONTAINED, ActionKind.ANALYSE): IncidentState.ANALYSED,
    (IncidentState.ANALYSED, ActionKind.REGRADE): IncidentState.ANALYSED,
    (IncidentState.ANALYSED, ActionKind.REMEDIATE): IncidentState.REMEDIATED,
    (IncidentState.REMEDIATED, ActionKind.REMEDIATE): IncidentState.REMEDIATED,
    (IncidentState.REMEDIATED, ActionKind.REGRADE): IncidentState.REMEDIATED,
    (IncidentState.REMEDIATED, ActionKind.CLOSE): IncidentState.CLOSED,
}


# Who may act on an incident and read its timeline: the response team (SEC-4).
RESPONSE_TEAM: tuple[StaffRole, ...] = (StaffRole.SECURITY_OFFICER, StaffRole.PRIVACY_OFFICER)


class NotOnResponseTeam(Exception):
    """Staff without a response-team role."""


def responder_role(roles: Iterable[str]) -> StaffRole:
    """The response-team role a staff member acts under (the security officer's first)."""
    held = frozenset(roles)
    for role in RESPONSE_TEAM:
        if role.value in held:
            return role
    raise NotOnResponseTeam("the response team is the security and privacy officers")


class IllegalTransition(Exception):
    """An action the incident's state does not allow."""


class ActionOutOfOrder(ValueError):
    """An action dated before the incident's latest one: the timeline only moves forward."""


class InvalidAction(ValueError):
    """An action without an actor, with a naive time, or without what its kind requires."""


@enforces("SEC-4")
def transition(state: IncidentState | None, action: ActionKind) -> IncidentState:
    """The state `action` leads to from `state` (None: no incident yet); raises
    IllegalTransition for a move TRANSITIONS does not declare."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(f"{state or 'no incident'} → {action}") from None


# The wire values are the catalog's (the events carry them); the workflow's names for them:
Source = IncidentSource  # how an incident came to be reported
Containment = ContainmentMeasure  # a damage-control measure, carried out by its owner


# Who can carry out each measure, the default first. A key's rotation is identity's for its
# access-token signing keys (the target names the key id); any other key (the master key, a
# service's event-signing key) needs new secret material in the deployment, so that request
# is handed to an operator: see the README, "Containment".
CONTAINMENT_OWNERS: Mapping[Containment, tuple[str, ...]] = {
    Containment.REVOKE_PARTNER_CREDENTIAL: ("sharing-gateway",),
    Containment.END_STAFF_SESSIONS: ("identity",),
    Containment.ROTATE_KEY: ("keystore", "identity"),
}

# Owners that are operators' tools, not services: nothing consumes their requests, so the
# request is handed to an operator (`incident.ContainmentNeedsOperator`).
OPERATOR_OWNERS: frozenset[str] = frozenset({"keystore"})


@dataclass(frozen=True, kw_only=True)
class Action:
    """A step of the response: who took it (an opaque id) and when (time-zone aware)."""

    kind: ClassVar[ActionKind]
    actor: str
    at: datetime
    note: str = ""  # free text for the response team; never personal data

    def __post_init__(self) -> None:
        if not self.actor.strip():
            raise InvalidAction(f"{self.kind} without an actor")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise InvalidAction(f"{self.kind} at a time without a time zone")


@dataclass(frozen=True, kw_only=True)
class Report(Action):
    kind: ClassVar[ActionKind] = ActionKind.REPORT
    source: Source
    summary: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.summary.strip():
            raise InvalidAction("a report says what happened")


@dataclass(frozen=True, kw_only=True)
class Triage(Action):
    kind: ClassVar[ActionKind] = ActionKind.TRIAGE
    category: VerisAction
    assessment: Assessment


@dataclass(frozen=True, kw_only=True)
class Regrade(Action):
    kind: ClassVar[ActionKind] = ActionKind.REGRADE
    assessment: Assessment


@dataclass(frozen=True, kw_only=True)
class Contain(Action):
    kind: ClassVar[ActionKind] = ActionKind.CONTAIN
    measure: Containment
    target: str  # the credential's, staff member's or key's id
    # Who carries it out: one of the measure's owners (`CONTAINMENT_OWNERS`); none named,
    # its default (for rotate-key, the operator's handoff).
    owner: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.target.strip():
            raise InvalidAction(f"{self.measure} of nothing")
        owners = CONTAINMENT_OWNERS[self.measure]
        if not self.owner:
            object.__setattr__(self, "owner", owners[0])
        elif self.owner not in owners:
            raise InvalidAction(
                f"{self.measure} is carried out by {' or '.join(owners)}, not {self.owner}"
            )


@dataclass(frozen=True, kw_only=True)
class Analyse(Action):
    kind: ClassVar[ActionKind] = ActionKind.ANALYSE
    root_cause: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.root_cause.strip():
            raise InvalidAction("an analysis names the root cause")


@dataclass(frozen=True, kw_only=True)
class Remediate(Action):
    kind: ClassVar[ActionKind] = ActionKind.REMEDIATE
    measure: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.measure.strip():
            raise InvalidAction("a remediation says what was done")


@dataclass(frozen=True, kw_only=True)
class Close(Action):
    kind: ClassVar[ActionKind] = ActionKind.CLOSE


@dataclass(frozen=True)
class Incident:
    """An incident as its actions made it. `timeline` is every action, in order."""

    state: IncidentState
    source: Source
    summary: str
    reported_by: str
    reported_at: datetime
    category: VerisAction | None = None
    assessment: Assessment | None = None
    containment: tuple[Contain, ...] = ()
    root_cause: str | None = None
    remediation: tuple[str, ...] = ()
    closed_at: datetime | None = None
    timeline: tuple[Action, ...] = field(default=())

    @property
    def severity(self) -> Severity | None:
        return None if self.assessment is None else self.assessment.severity

    @property
    def open(self) -> bool:
        return self.state is not IncidentState.CLOSED


@enforces("SEC-4")
def apply(incident: Incident | None, action: Action) -> Incident:
    """The incident after `action` (None: not reported yet). Refuses a move the state does
    not allow (IllegalTransition) and an action dated before the latest (ActionOutOfOrder)."""
    state = transition(None if incident is None else incident.state, action.kind)
    if incident is None:
        assert isinstance(action, Report)  # the only action TRANSITIONS allows from None
        return Incident(
            state,
            action.source,
            action.summary,
            action.actor,
            action.at,
            timeline=(action,),
        )
    if action.at < incident.timeline[-1].at:
        raise ActionOutOfOrder(f"{action.kind} at {action.at} before {incident.timeline[-1].at}")
    after = replace(incident, state=state, timeline=(*incident.timeline, action))
    match action:
        case Triage():
            return replace(after, category=action.category, assessment=action.assessment)
        case Regrade():
            return replace(after, assessment=action.assessment)
        case Contain():
            return replace(after, containment=(*incident.containment, action))
        case Analyse():
            return replace(after, root_cause=action.root_cause)
        case Remediate():
            return replace(after, remediation=(*incident.remediation, action.measure))
        case Close():
            return replace(after, closed_at=action.at)
    return after


class NoIncident(ValueError):
    """A fold of no actions: nothing was reported."""


def fold(actions: Iterable[Action]) -> Incident:
    """The incident its actions, in the order they were taken, make."""
    incident: Incident | None = None
    for action in actions:
        incident = apply(incident, action)
    if incident is None:
        raise NoIncident("no actions")
    return incident


# --- regulator deadlines (SEC-5) ---------------------------------------------------------


class IncidentIsClosed(Exception):
    """The incident is closed: it takes no more actions and no new exposure summary."""


class NoReportDue(Exception):
    """A report filed for a regime whose regulator need not be told of this incident."""


class ReportAlreadyFiled(Exception):
    """The regime's report was filed already."""


def ensure_open(incident: Incident) -> None:
    """Refuses an exposure summary for a closed incident (IncidentIsClosed)."""
    if not incident.open:
        raise IncidentIsClosed("the incident is closed")


@dataclass(frozen=True)
class RegimeDeadline:
    """A regime the incident falls under: its notifiable subjects; whether its regulator
    must be told (`report_due`), by when (`due_by`; None: no fixed period), when the
    residents' notices are due; whether the report was filed, and the alert (75 % of the
    period gone, not filed yet)."""

    regime: Regime
    subjects: int
    report_due: bool
    due_by: datetime | None
    residents_due_by: datetime | None
    filed: bool
    alert: bool


@enforces("SEC-5")
def regulator_deadlines(
    exposure: Exposure,
    discovered_at: datetime,
    now: datetime,
    filed: Iterable[str] = (),
) -> tuple[RegimeDeadline, ...]:
    """The regimes `exposure` falls under, each with its deadline from `discovered_at` and
    its alert at `now` (never once its report is filed, nor without a report due)."""
    done = frozenset(filed)
    out = []
    for applicable in applicable_regimes(exposure):
        regime = applicable.regime
        due = applicable.report_due
        out.append(
            RegimeDeadline(
                regime=regime,
                subjects=applicable.subjects,
                report_due=due,
                due_by=deadline(regime, discovered_at) if due else None,
                residents_due_by=residents_deadline(regime, discovered_at),
                filed=regime.code in done,
                alert=due and regime.code not in done and alert_due(regime, discovered_at, now),
            )
        )
    return tuple(out)


@enforces("SEC-5")
def check_filing(exposure: Exposure | None, regime_code: str, filed: Iterable[str]) -> None:
    """A report may be filed once, for a regime whose regulator the exposure requires told:
    raises NoReportDue (no exposure summary, a regime that does not apply or is below its
    threshold) or ReportAlreadyFiled."""
    if exposure is None:
        raise NoReportDue("no exposure summary is attached: no regime applies yet")
    due = {a.regime.code for a in applicable_regimes(exposure) if a.report_due}
    if regime_code not in due:
        raise NoReportDue(f"no report to {regime_code} is due for this incident")
    if regime_code in frozenset(filed):
        raise ReportAlreadyFiled(f"the report to {regime_code} was filed already")
