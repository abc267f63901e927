"""Forged records reported to the service's own log, for the incident service (SEC-4).

A record that fails verification (`authenticity.py`) is parked as a dead letter and never
applied. That stops the forgery; it does not tell anyone that someone with write access to
the broker is forging. So, in the same transaction as the dead letter, the service appends
`platform.ForgedEventRejected` to its own log: signed like everything it appends, relayed
to its topic, and read there by the incident service, which raises an incident.

Once per record and service: the first of the service's projections to park it reports it;
the others (each follows the topic and parks the same record) and a redelivery (the dead
letter counted again) do not. The report says where the record came from and why it was
refused, never what it said (see the event's docstring).

If the append itself fails for a reason a retry cannot fix, the dead letter still stands
(the report's savepoint alone is rolled back) and the failure is logged: a report must
never stop the stream the forgery could not stop. A transient failure fails the batch, which
is retried whole, dead letter and report together.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.authenticity import RejectedEvent
from expensura_events.catalog.platform import ForgedEventRejected
from expensura_events.db_errors import error_fields, is_transient
from expensura_events.deadletters import DeadLetter, Delivery
from expensura_events.envelope import Actor
from expensura_events.obligations import enforces
from expensura_events.privacy.ports import ServiceLog
from expensura_events.registry import REGISTRY
from expensura_events.tables import projection_dead_letters as dl
from expensura_events.vocabulary import Purpose

log = structlog.get_logger("expensura.projections")

# Called by a projection runner after it parked a refused record, in the same transaction.
RejectionHook = Callable[[AsyncConnection, DeadLetter, Delivery, RejectedEvent], Awaitable[None]]


def forgery_stream(service: str) -> str:
    """The stream of a service's reports of refused records."""
    return f"forgeries-{service}"


def report_of(letter: DeadLetter, delivery: Delivery, exc: RejectedEvent) -> ForgedEventRejected:
    """What the report says: where from and why, never a value a forger chose (a type name
    is kept only when it is a registered one)."""
    claimed = letter.event_type
    return ForgedEventRejected(
        claimed_source=delivery.source,
        topic=getattr(delivery, "topic", None) or None,
        partition=getattr(delivery, "partition", None),
        offset=getattr(delivery, "offset", None),
        rejected_event_id=uuid.UUID(letter.event_id),
        claimed_type=claimed if claimed is not None and REGISTRY.known(claimed) else None,
        reason=exc.reason,
        projection=letter.projection,
    )


async def _first_report(conn: AsyncConnection, letter: DeadLetter) -> bool:
    """Whether this parking is the record's first in this service: its first attempt, and
    no other projection here has parked it."""
    if letter.attempts > 1:
        return False
    others = await conn.execute(
        select(func.count())
        .select_from(dl)
        .where(dl.c.event_id == uuid.UUID(letter.event_id), dl.c.projection != letter.projection)
    )
    return others.scalar_one() == 0


def reporter(rt: ServiceLog) -> RejectionHook:
    """The hook that appends `rt`'s report of a refused record (module docstring)."""

    @enforces("SEC-4")
    async def report(
        conn: AsyncConnection, letter: DeadLetter, delivery: Delivery, exc: RejectedEvent
    ) -> None:
        if not await _first_report(conn, letter):
            return
        envelope = rt.envelope(
            report_of(letter, delivery, exc),
            stream_id=forgery_stream(rt.name),
            subject_id=None,  # about a record, not a person (its claimed subject is unverified)
            actor=Actor.system(f"{rt.name}.projections"),
            purpose=Purpose.SECURITY,
        )
        try:
            async with conn.begin_nested():
                await rt.append(conn, [envelope])
        except Exception as exc_append:
            if is_transient(exc_append):
                raise
            log.warning(
                "projection.forgery_report_failed",
                projection=letter.projection,
                event_id=letter.event_id,
                **error_fields(exc_append),
            )

    return report
