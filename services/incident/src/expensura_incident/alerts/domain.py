"""Incidents raised automatically (SEC-4): which causes raise one, and the rule that keeps a
burst of one cause to one incident. Pure rules, no I/O.

Three causes raise an incident without anyone reporting it, each as `system:<source>`:

- **A risk signal** (`loans.RiskSignalRaised`) of a kind that says the lender's or a
  customer's security was breached, not merely that an application looks risky (see
  `SECURITY_SIGNALS`). Most signals are ordinary fraud screening: loans holds the application
  for a risk analyst (USE-6), and that review is the response; an incident for each would
  bury the response team in the analysts' queue.
- **A forged record** (`platform.ForgedEventRejected`): any service refused a record on its
  topic or log feed because its signature or sealing did not verify. Someone can write to
  the broker who should not: always an incident.
- **A broken log** (`expensura log verify`, through incident's internal route): a service's
  hash chain is broken, or its checkpoints contradict what its peers witnessed (a rewritten
  history). Always an incident.

The dedupe rule. Every cause has an *occurrence* (what makes it this one) and a *key* (what
makes it the same trouble):

- risk-signal: the occurrence is the signal's event id; the key, the signal's kind.
- forged-event: the occurrence is the refused record (its topic, partition and offset; from
  a log feed, its id); the key, the service whose topic or feed carried it.
- log-verify-failed: the occurrence is the service, the first broken sequence and whether
  the witnesses contradict it; the key, the service whose log broke.

1. An occurrence seen before changes nothing: a redelivered event, a rebuild replaying the
   log, the same forged record refused by five services, `log verify` run twice on the same
   break.
2. A new occurrence whose key has an open incident is attached to that incident as a
   timeline entry (`incident.CauseAttached`): a burst of a thousand signals of one kind, or
   of forged records on one topic, is one incident with a thousand entries, not a thousand
   incidents.
3. Otherwise a new incident is raised: the key's first, or its next once the last is closed.

Nothing personal: a key and an occurrence are kinds, service names, topic positions and event
ids. The device or card a signal names stays sealed in loans' event (incident opens no
loans key), so a burst is deduplicated by kind, not by device: one device's burst and a
campaign over many devices are both one open incident per kind, and each entry's causing
event leads the team to loans' review of that application.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from expensura_events.catalog.incident_response import IncidentSource
from expensura_events.catalog.loans_risk import RiskSignalKind
from expensura_events.catalog.platform import ForgedEventRejected
from expensura_events.envelope import Actor
from expensura_events.obligations import enforces

_K = RiskSignalKind

# The kinds that are security incidents, and why (the incident's summary says it).
SECURITY_SIGNALS: Mapping[RiskSignalKind, str] = {
    # The last step of an account takeover (loans' risk domain): someone other than the
    # customer may control the account, a breach of its integrity.
    _K.PAYOUT_ACCOUNT_CHANGED: (
        "a loan's payout account changed just before disbursement, the last step of an "
        "account takeover"
    ),
    # One device operating more accounts than a household has: synthetic identities or
    # taken-over accounts run from one place, an attack on the lender, not one applicant.
    _K.DEVICE_ON_MANY_ACCOUNTS: (
        "one device used on more accounts than a household has: accounts taken over or "
        "made up and run from one place"
    ),
}
# Fraud screening, for loans' risk analysts, not the response team: applying too often
# (from one device, with one card, as one person) and applying from a registered device
# whose owner is not verified. Each holds its application for review (USE-6).
SCREENING_SIGNALS: frozenset[RiskSignalKind] = frozenset(RiskSignalKind) - set(SECURITY_SIGNALS)


def actor_for(source: IncidentSource) -> Actor:
    """Who raised it: `system:<source>`, an opaque id like a staff member's."""
    return Actor.system(f"system:{source.value}")


@dataclass(frozen=True)
class Cause:
    """One occurrence of something that raises an incident (module docstring)."""

    source: IncidentSource
    key: str
    occurrence: str
    summary: str  # the incident's summary when this cause raises it: fixed phrases only

    @property
    def actor(self) -> Actor:
        return actor_for(self.source)


def is_security_incident(kind: RiskSignalKind) -> bool:
    return kind in SECURITY_SIGNALS


@enforces("SEC-4")
def risk_signal_cause(kind: RiskSignalKind, event_id: UUID) -> Cause | None:
    """The cause a risk signal is, or None for fraud screening (loans' review handles it)."""
    why = SECURITY_SIGNALS.get(kind)
    if why is None:
        return None
    return Cause(
        source=IncidentSource.RISK_SIGNAL,
        key=f"{IncidentSource.RISK_SIGNAL.value}:{kind.value}",
        occurrence=f"event:{event_id}",
        summary=f"Risk signal {kind.value} from loans: {why}.",
    )


@enforces("SEC-4")
def forged_record_cause(report: ForgedEventRejected) -> Cause:
    """The cause a service's report of a refused record is."""
    where = report.claimed_source
    if report.topic is not None and report.partition is not None and report.offset is not None:
        occurrence = f"record:{report.topic}/{report.partition}/{report.offset}"
        place = f"topic {report.topic}"
    else:
        occurrence = f"record:{where}/{report.rejected_event_id}"
        place = f"{where}'s log feed"
    return Cause(
        source=IncidentSource.FORGED_EVENT,
        key=f"{IncidentSource.FORGED_EVENT.value}:{where}",
        occurrence=occurrence,
        summary=(
            f"A record on {place} claiming to come from {where} was refused "
            f"({report.reason}): someone who is not {where} can write there."
        ),
    )


class NothingBroken(ValueError):
    """A broken-log report that names no break (no broken sequence, no rewrite)."""


@enforces("SEC-4")
def broken_log_cause(service: str, first_broken: int | None, rewritten: bool) -> Cause:
    """The cause `log verify`'s finding on `service`'s log is. Raises NothingBroken."""
    if first_broken is None and not rewritten:
        raise NothingBroken("a broken-log report names a broken sequence or a rewrite")
    found = []
    if first_broken is not None:
        found.append(f"chain broken at sequence {first_broken}")
    if rewritten:
        found.append("checkpoints contradict what its peers witnessed (rewritten history)")
    return Cause(
        source=IncidentSource.LOG_VERIFY_FAILED,
        key=f"{IncidentSource.LOG_VERIFY_FAILED.value}:{service}",
        occurrence=f"log:{service}:{first_broken or 0}:{'rewritten' if rewritten else 'chain'}",
        summary=f"expensura log verify: {service}'s log {' and '.join(found)}.",
    )


# --- the decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlreadySeen:
    """The occurrence was handled before: nothing to do."""

    incident_id: UUID


@dataclass(frozen=True)
class Attach:
    """Attach the occurrence to the key's open incident."""

    incident_id: UUID


@dataclass(frozen=True)
class Raise:
    """Raise a new incident."""


Decision = AlreadySeen | Attach | Raise


@enforces("SEC-4")
def decide(seen_in: UUID | None, open_for_key: UUID | None) -> Decision:
    """What one occurrence does, given the incident it went to if it was seen before, and
    its key's open incident if any (the dedupe rule, module docstring)."""
    if seen_in is not None:
        return AlreadySeen(seen_in)
    if open_for_key is not None:
        return Attach(open_for_key)
    return Raise()
