"""Incidents raised from the logs (SEC-4): loans' risk signals of a security kind, and every
service's reports of forged records it refused (`platform.ForgedEventRejected`, see
`expensura_events.forgeries`). Each event is one occurrence (`domain`): it raises an
incident, is attached to its key's open one, or does nothing.

Not a read model: its output is incidents, which a rebuild must not raise again. So it names
no table to empty; its occurrences table (`auto_raised_causes`) is what a replay finds, and
the library's inbox only saves the work. It reads no personal field (a signal's kind is
readable; its device and card stay sealed: it opens no loans key). It follows erased
subjects' signals too: it keeps nothing about them, and a security incident still happened.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.loans_risk import RiskSignalRaised
from expensura_events.catalog.platform import ForgedEventRejected
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.runtime import ServiceRuntime
from expensura_events.topology import ServiceName
from expensura_incident.alerts import service
from expensura_incident.alerts.domain import forged_record_cause, risk_signal_cause

RISK_SIGNAL = "loans.RiskSignalRaised"
FORGED_EVENT = "platform.ForgedEventRejected"


class AutoRaisedIncidents(Projection):
    name = "auto-raised-incidents"
    sources = tuple(s.value for s in ServiceName)  # every service reports forgeries
    tables = ()  # see the module docstring: a rebuild must not raise every incident again
    event_types = frozenset({RISK_SIGNAL, FORGED_EVENT})
    follows_erased_subjects = True

    def bind(self, runtime: Any) -> None:
        self.rt: ServiceRuntime = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        payload = event.payload
        if isinstance(payload, RiskSignalRaised) and event.source == ServiceName.LOANS:
            cause = risk_signal_cause(payload.kind, event.event_id)
        elif isinstance(payload, ForgedEventRejected):
            cause = forged_record_cause(payload)
        else:
            return
        if cause is not None:
            await service.handle(self.rt, conn, cause, causation_id=event.event_id)
