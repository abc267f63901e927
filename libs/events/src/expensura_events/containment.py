"""An owning service carrying out an incident's containment requests (SEC-4).

The incident service records `incident.ContainmentRequested` (measure, target, owner); each
owner follows incident's log with a `ContainmentProjection` for the measure it carries out
and acts only on requests that name it. Only incident's signed records count (the runner
verifies each against the topic's owner), and the inbox applies each request once: a
redelivered request does nothing twice. What the owner does is recorded by its own event,
naming the incident, with the request as its causation, so incident can show the outcome.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_response import ContainmentMeasure, ContainmentRequested
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.topology import ServiceName


class ContainmentProjection(Projection):
    """Carries out one measure for one owning service; subclasses say which (`owner`,
    `measure`) and how (`carry_out`, in the projection's transaction)."""

    sources = (ServiceName.INCIDENT.value,)
    tables = ()  # what it does is a fact, not a read model: a rebuild finds it done
    event_types = frozenset({ContainmentRequested.event_type})
    owner: ClassVar[ServiceName]
    measure: ClassVar[ContainmentMeasure]

    rt: Any  # the owning service's runtime (bound before use)

    def bind(self, runtime: Any) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        asked = event.payload
        if (
            isinstance(asked, ContainmentRequested)
            and asked.owner == self.owner
            and asked.measure == self.measure
        ):
            await self.carry_out(conn, asked, event)

    @abstractmethod
    async def carry_out(
        self, conn: AsyncConnection, asked: ContainmentRequested, request: EventEnvelope
    ) -> None:
        """Do `asked` on its target; the owner's event names `asked.incident_id`, has the
        requesting responder (`request.actor`) as its actor and `request.event_id` as its
        causation. An unknown target raises (the runner parks it as a dead letter)."""
