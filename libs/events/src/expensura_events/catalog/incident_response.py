"""The incident response workflow (SEC-4) and the regulators' reports (SEC-5): an incident
reported, triaged (a VERIS category and an ENISA severity), regraded, contained (each
damage-control measure asked of the service that owns it), analysed, remediated, closed; its
exposure summary attached; a report to a regulator filed. Stream `incident-<id>`, no data
subject: an incident is about the lender's systems, not one person.

No event carries free text. The summary, the root cause, the remediation and the team's
notes may name people (a staff member, a customer): they stay in the incident service's
table, which can be corrected, never in the immutable log. An event records what was done,
by whom (the envelope's actor, an opaque id) and when. A containment's target is an opaque
id (a partner credential's, a staff member's, a key's); an exposure summary holds counts per
residence, never a subject.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent
from expensura_events.registry import event_type


def incident_stream(incident_id: UUID) -> str:
    return f"incident-{incident_id}"


def containment_handoff_stream(request_id: UUID) -> str:
    """The handoff of one containment request to an operator (`ContainmentNeedsOperator`),
    once: `request_id` is the `ContainmentRequested` event's id."""
    return f"containment-{request_id}"


class IncidentSource(StrEnum):
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


class ContainmentMeasure(StrEnum):
    """A damage-control measure; the owning service carries it out."""

    REVOKE_PARTNER_CREDENTIAL = "revoke-partner-credential"
    END_STAFF_SESSIONS = "end-staff-sessions"
    ROTATE_KEY = "rotate-key"


SeverityBand = Literal["low", "medium", "high", "very-high"]
Quarter = Annotated[float, Field(ge=0, le=1, multiple_of=0.25)]
Codes = Annotated[list[str], Field(max_length=40)]
OpaqueId = Annotated[str, Field(min_length=1, max_length=200)]


class _Grade(DomainEvent):
    """ENISA's inputs and result (SE = DPC x EI + CB): the breached data sets as
    `category` or `category/adjustment`, the ease of identification, the circumstances."""

    incident_id: UUID
    severity: SeverityBand
    score: float = Field(ge=0, le=6)
    data_sets: Annotated[list[str], Field(min_length=1, max_length=4)]
    identification: Quarter
    confidentiality: Quarter
    integrity: Quarter
    availability: Quarter
    malicious: bool


@event_type("incident.IncidentReported", source="incident")
class IncidentReported(DomainEvent):
    """An incident was reported (by staff, or raised by a system: the envelope's actor)."""

    incident_id: UUID
    source: IncidentSource


@event_type("incident.IncidentTriaged", source="incident")
class IncidentTriaged(_Grade):
    category: VerisAction


@event_type("incident.IncidentRegraded", source="incident")
class IncidentRegraded(_Grade):
    """The grade revised while the incident is open."""


@event_type("incident.ContainmentRequested", source="incident")
class ContainmentRequested(DomainEvent):
    """The response team asked `owner` to carry out `measure` on `target`."""

    incident_id: UUID
    measure: ContainmentMeasure
    target: OpaqueId  # the credential's, staff member's or key's id
    owner: Annotated[str, Field(min_length=1, max_length=50)]  # the owning service


@event_type("incident.ContainmentNeedsOperator", source="incident")
class ContainmentNeedsOperator(DomainEvent):
    """No service carries out this request: its owner is an operator's tool, not a process
    (`keystore`: a key is rotated with `expensura keys` and the deployment's secrets, see the
    incident README). Recorded with the request (the envelope's causation id is its event id)
    so that the log says plainly that a person must act."""

    incident_id: UUID
    measure: ContainmentMeasure
    target: OpaqueId
    owner: Annotated[str, Field(min_length=1, max_length=50)]


@event_type("incident.IncidentAnalysed", source="incident")
class IncidentAnalysed(DomainEvent):
    """The root cause was found (its text stays in incident's table)."""

    incident_id: UUID


@event_type("incident.IncidentRemediated", source="incident")
class IncidentRemediated(DomainEvent):
    """A remediation was carried out (its text stays in incident's table)."""

    incident_id: UUID


@event_type("incident.IncidentClosed", source="incident")
class IncidentClosed(DomainEvent):
    incident_id: UUID


@event_type("incident.ExposureSummaryAttached", source="incident")
class ExposureSummaryAttached(DomainEvent):
    """A blast radius's summary attached: counts only. `regimes` the codes of the
    notification regimes it falls under, `reports_due` those whose regulator must be told."""

    incident_id: UUID
    subjects: int = Field(ge=0)
    notifiable_subjects: int = Field(ge=0)  # unsealed, or sealed under a key that was taken
    residences: Codes
    information_types: Codes
    regimes: Codes
    reports_due: Codes


@event_type("incident.RegulatorReportFiled", source="incident")
class RegulatorReportFiled(DomainEvent):
    """An officer filed the incident's report with a regime's regulator."""

    incident_id: UUID
    regime: Annotated[str, Field(min_length=1, max_length=50)]
    # The regulator's acknowledgement (a case or confirmation number), if it gave one.
    reference: Annotated[str, Field(max_length=200)] | None = None


@event_type("incident.CauseAttached", source="incident")
class CauseAttached(DomainEvent):
    """A further occurrence of what raised an incident automatically (another risk signal of
    its kind, another forged record on its topic, its chain found broken anew) attached to
    the open incident instead of raising a second one. The envelope's causation id names the
    causing event when there is one; nothing else about it is said here."""

    incident_id: UUID
    source: IncidentSource
