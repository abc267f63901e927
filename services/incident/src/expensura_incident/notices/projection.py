"""Customer notices requested by loans (USE-10), kept for delivery.

A process manager more than a read model: each row also records whether its notice went
out, which no source log says. So a rebuild must not empty it (`tables` is empty): it
replays loans' requests, and a notice already known stays as it is (by `notice_id`), so a
rebuild never sends a notice again. Access requests and erasure still reach the rows
(`subject_rows`, `purge_subject` over `kept`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.loans_notices import CustomerNoticeRequested
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.runtime import ServiceRuntime
from expensura_incident.notices import service
from expensura_incident.tables import customer_notice_attempts, customer_notices


class CustomerNotices(Projection):
    name = "customer-notices"
    sources = ("loans",)
    tables = ()  # see the module's docstring: a rebuild keeps the delivery states
    kept: ClassVar[tuple[Table, ...]] = (customer_notices, customer_notice_attempts)
    event_types = frozenset({CustomerNoticeRequested.event_type})
    # It opens the body sealed with loans' key (to seal it again under incident's own row):
    # provisioning makes incident a reader of loans' keys for it.
    opens_personal_data = True

    def bind(self, runtime: Any) -> None:
        self.rt: ServiceRuntime = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        await service.record_request(self.rt, conn, event)

    async def subject_rows(self, conn: AsyncConnection, subject_id: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for table in self.kept:
            rows = await conn.execute(select(table).where(table.c.subject_id == subject_id))
            out[table.name] = [dict(r._mapping) for r in rows]
        return out

    async def purge_subject(self, conn: AsyncConnection, subject_id: str) -> dict[str, int]:
        purged: dict[str, int] = {}
        for table in self.kept:
            result = await conn.execute(delete(table).where(table.c.subject_id == subject_id))
            purged[table.name] = result.rowcount
        return purged
