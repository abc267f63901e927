"""The exposure index (SEC-5): every access and disclosure event of every service's log,
one row per field read (`domain.rows_of`), for the blast radius of an incident.

Each record is verified (signed by the service whose topic or log feed delivered it) before
it applies, like every projection's; the chains of the logs a blast radius read are checked
when it is computed (`service.compute`). It reads no personal value (the fields' names,
the ids and the times are readable), so it opens no other service's keys. Erasure purges a
subject's rows (the library's `purge_subject`); a rebuild empties and refills it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.topology import ServiceName
from expensura_incident.exposure import store
from expensura_incident.exposure.domain import INDEXED_TYPES, rows_of
from expensura_incident.tables import exposure_index


class ExposureIndex(Projection):
    name = "exposure"
    sources = tuple(s.value for s in ServiceName)  # every service's log
    tables = (exposure_index,)
    event_types = INDEXED_TYPES

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        await store.add_rows(conn, rows_of(event))
