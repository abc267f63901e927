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

Pure: no I/O. No store, service or views yet (nor events in the catalog): this module is
what they will apply. Actors are opaque ids (a staff member's, or `system:<source>` for an
incident raised automatically, e.g. `system:log-verify`), never a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from expensura_events.obligations import enforces
from expensura_incident.grading.domain import Assessment, Severity


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


class Source(StrEnum):
    """How an incident came to be reported."""

    STAFF = "staff"
    LOG_VERIFY_FAILED = "log-verify-failed"  # `expensura log verify` found a broken chain
    FORGED_EVENT = "forged-event"  # a dead-lettered event whose signature did not verify
    RISK_SIGNAL = "risk-signal"


class VerisAction(StrEnum):
    """The incident's category: VERIS's action (what the threat actor did)."""

    HACKING = "hacking"
    MALWARE = "malware"
    SOCIAL = "social"
    MISUSE = "misuse"
    PHYSICAL = "physical"
    ERROR = "error"
    ENVIRONMENTAL = "environmental"
    UNKNOWN = "unknown"


class Containment(StrEnum):
    """A damage-control measure, and the service that owns and carries it out."""

    REVOKE_PARTNER_CREDENTIAL = "revoke-partner-credential"
    END_STAFF_SESSIONS = "end-staff-sessions"
    ROTATE_KEY = "rotate-key"


CONTAINMENT_OWNER: Mapping[Containment, str] = {
    Containment.REVOKE_PARTNER_CREDENTIAL: "sharing-gateway",
    Containment.END_STAFF_SESSIONS: "identity",
    Containment.ROTATE_KEY: "keystore",
}


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

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.target.strip():
            raise InvalidAction(f"{self.measure} of nothing")

    @property
    def owner(self) -> str:
        return CONTAINMENT_OWNER[self.measure]


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
