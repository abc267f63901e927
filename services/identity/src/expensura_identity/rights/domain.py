"""Data-subject rights (RGT-1, RGT-3, RUL-2, POL-2): account cancellation as a declared
state machine, erasure certificates, and the export document. Pure: no framework, no
database.

    cooling-off ──(period over)──▶ processing-stopped ──▶ erasing ──(all confirmed)──▶ certified
         │                                                 │  ▲ └──(retries exhausted)──▶ escalated
         └──(the user takes it back)──▶ withdrawn          └──┘ (asked again)               │
                                                                certified ◀──(late confirmations)┘
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from expensura_events.catalog.rights import HeldEntry
from expensura_events.envelope import LegalBasis
from expensura_events.obligations import enforces
from expensura_events.topology import SERVICES
from expensura_events.vocabulary import LegalGround

RIGHTS_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="data-subject rights")
EXPORT_FORMAT = "expensura-subject-export/1"

# Every store that must confirm before a certificate is issued, and every store an export
# asks.
ERASURE_PARTICIPANTS: tuple[str, ...] = tuple(s.name.value for s in SERVICES)


class CancellationState(StrEnum):
    COOLING_OFF = "cooling-off"
    WITHDRAWN = "withdrawn"
    PROCESSING_STOPPED = "processing-stopped"
    ERASING = "erasing"
    CERTIFIED = "certified"
    ESCALATED = "escalated"


class CancellationAction(StrEnum):
    WITHDRAW = "withdraw"  # the user, during cooling-off
    STOP_PROCESSING = "stop-processing"  # the cooling-off period is over
    REQUEST_ERASURE = "request-erasure"  # the subject's key is destroyed; stores purge
    ASK_AGAIN = "ask-again"  # some stores did not confirm in time
    ESCALATE = "escalate"  # still missing after the last attempt: a person takes over
    CERTIFY = "certify"  # every store confirmed


INITIAL_STATE = CancellationState.COOLING_OFF

TRANSITIONS: Mapping[tuple[CancellationState, CancellationAction], CancellationState] = {
    (CancellationState.COOLING_OFF, CancellationAction.WITHDRAW): CancellationState.WITHDRAWN,
    (
        CancellationState.COOLING_OFF,
        CancellationAction.STOP_PROCESSING,
    ): CancellationState.PROCESSING_STOPPED,
    (
        CancellationState.PROCESSING_STOPPED,
        CancellationAction.REQUEST_ERASURE,
    ): CancellationState.ERASING,
    (CancellationState.ERASING, CancellationAction.ASK_AGAIN): CancellationState.ERASING,
    (CancellationState.ERASING, CancellationAction.ESCALATE): CancellationState.ESCALATED,
    (CancellationState.ERASING, CancellationAction.CERTIFY): CancellationState.CERTIFIED,
    # Stores that confirm after the escalation still complete the certificate.
    (CancellationState.ESCALATED, CancellationAction.CERTIFY): CancellationState.CERTIFIED,
}

# One open request per subject (the database holds it too, with a partial unique index).
OPEN_STATES = frozenset(
    {
        CancellationState.COOLING_OFF,
        CancellationState.PROCESSING_STOPPED,
        CancellationState.ERASING,
        CancellationState.ESCALATED,
    }
)

# Erasure asked of every store, not yet confirmed by all (`expensura_erasures_pending`).
ERASURE_PENDING_STATES = frozenset({CancellationState.ERASING, CancellationState.ESCALATED})


@dataclass(frozen=True)
class CancellationRecord:
    request_id: UUID
    subject_id: str
    state: CancellationState
    requested_at: datetime
    cooling_off_until: datetime
    erasure_requested_at: datetime | None
    attempts: int


@dataclass(frozen=True)
class HeldRecords:
    """Records a store kept under a legal retention hold after the erasure (RUL-2): held
    until the hold ends, then erased when the store records the end."""

    service: str
    hold: str
    records: str  # as the store said it: "3 log records"
    held_until: date | None
    erased_at: datetime | None = None

    @property
    def status(self) -> str:
        if self.erased_at is not None:
            return "erased"
        return "held" if self.held_until is None else f"held until {self.held_until.isoformat()}"


@dataclass(frozen=True)
class Certificate:
    request_id: UUID
    subject_id: str
    issued_at: datetime
    services: list[str]
    event_id: UUID
    retention: tuple[HeldRecords, ...] = ()


@enforces("RUL-2")
def held_records(
    retained: Mapping[str, Sequence[str]], ended: Mapping[tuple[str, str], datetime]
) -> tuple[HeldRecords, ...]:
    """What each store's confirmation said it kept under a hold (`retained`, by store), and
    which of those holds the store has since ended (`ended`, by store and hold): erased."""
    out: list[HeldRecords] = []
    for service in sorted(retained):
        for entry in retained[service]:
            held = HeldEntry.parse(entry)
            if held is None:  # not a hold's entry: shown as the store wrote it
                out.append(HeldRecords(service, entry, entry, None))
                continue
            out.append(
                HeldRecords(
                    service,
                    held.hold,
                    f"{held.records} log records",
                    held.until,
                    ended.get((service, held.hold)),
                )
            )
    return tuple(out)


class IllegalTransition(Exception):
    def __init__(self, state: CancellationState, action: CancellationAction) -> None:
        super().__init__(f"a cancellation that is {state} cannot {action}")
        self.state, self.action = state, action


class CancellationAlreadyOpen(Exception):
    def __init__(self, request_id: UUID) -> None:
        super().__init__(f"request {request_id} is already open")
        self.request_id = request_id


class NoCancellation(Exception):
    pass


class CannotWithdraw(Exception):
    """Only during cooling-off: once processing stopped, erasure follows."""


class CertificateNotIssued(Exception):
    pass


class ExportIncomplete(Exception):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"no answer from {', '.join(missing)}")
        self.missing = missing


@enforces("RUL-2", "RGT-3")
def transition(state: CancellationState, action: CancellationAction) -> CancellationState:
    """The state after `action`, or IllegalTransition: the only way a request moves."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action) from None


def allows(state: CancellationState, action: CancellationAction) -> bool:
    return (state, action) in TRANSITIONS


def can_withdraw(state: CancellationState) -> bool:
    """Only during cooling-off: once processing stopped, erasure follows."""
    return allows(state, CancellationAction.WITHDRAW)


def cooling_off_until(requested_at: datetime, cooling_off_seconds: int) -> datetime:
    return requested_at + timedelta(seconds=cooling_off_seconds)


def cancellation_stream(request_id: UUID) -> str:
    """One cancellation request: from the request to the certificate."""
    return f"cancellation-{request_id}"


def export_stream(export_id: UUID) -> str:
    return f"export-{export_id}"


def missing_confirmations(confirmed: Iterable[str]) -> list[str]:
    done = set(confirmed)
    return [s for s in ERASURE_PARTICIPANTS if s not in done]


def erasure_overdue(requested_at: datetime | None, now: datetime, retry_seconds: float) -> bool:
    return requested_at is not None and now - requested_at > timedelta(seconds=retry_seconds)


def chase(attempts: int, max_attempts: int) -> CancellationAction:
    """Stores are missing after `attempts` requests: ask again, or escalate to a person."""
    return CancellationAction.ESCALATE if attempts >= max_attempts else CancellationAction.ASK_AGAIN


# --- the export (RGT-1) --------------------------------------------------------------------


@enforces("RGT-1")
def export_document(
    export_id: UUID, subject_id: str, generated_at: datetime, parts: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything every service holds about the subject, one document."""
    missing = [name for name in ERASURE_PARTICIPANTS if name not in parts]
    if missing:
        raise ExportIncomplete(missing)
    return {
        "export_id": str(export_id),
        "subject_id": subject_id,
        "generated_at": generated_at.isoformat(),
        "format": EXPORT_FORMAT,
        "services": dict(parts),
    }


def render_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()


def render_html(document: Mapping[str, Any]) -> str:
    """A plain page a person can read; the JSON file stays the machine-readable original."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Your Expensura data</title>",
        "</head><body><h1>Everything Expensura holds about you</h1>",
        f"<p>Export {html.escape(document['export_id'])}, generated "
        f"{html.escape(document['generated_at'])}.</p>",
    ]
    for service, part in document["services"].items():
        out.append(f"<h2>{html.escape(service)}</h2><table border='1'>")
        out.append("<tr><th>when</th><th>what</th><th>why</th><th>details</th></tr>")
        for event in part["events"]:
            out.append(
                "<tr>"
                f"<td>{html.escape(str(event['occurred_at']))}</td>"
                f"<td>{html.escape(event['event_type'])}</td>"
                f"<td>{html.escape(event['purpose'])}</td>"
                f"<td><code>{html.escape(json.dumps(event['payload']))}</code></td>"
                "</tr>"
            )
        out.append("</table>")
        for projection, tables in part["read_models"].items():
            out.append(f"<h3>{html.escape(projection)}</h3>")
            out.append(f"<pre>{html.escape(json.dumps(tables, indent=2))}</pre>")
    out.append("</body></html>")
    return "".join(out)
