"""Use cases of incidents raised automatically (SEC-4): an occurrence of a cause raises an
incident, is attached to its key's open one, or, seen before, does nothing (`domain.decide`).

Each runs in the caller's transaction (the projection's, which also records the causing
event in its inbox) or its own (a broken-log report from `log verify`): the dedupe key's lock
taken, the decision made, the incident raised or the entry attached with its event, and the
occurrence recorded, all committed together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_incident.alerts import store
from expensura_incident.alerts.domain import (
    AlreadySeen,
    Attach,
    Cause,
    broken_log_cause,
    decide,
)
from expensura_incident.response import service as response


class Outcome(StrEnum):
    RAISED = "raised"
    ATTACHED = "attached"
    ALREADY_SEEN = "already-seen"


@dataclass(frozen=True)
class Handled:
    incident_id: UUID
    outcome: Outcome


async def handle(
    rt: ServiceRuntime, conn: AsyncConnection, cause: Cause, causation_id: UUID | None = None
) -> Handled:
    """One occurrence, in the caller's transaction (module docstring)."""
    await store.lock_key(conn, cause.key)
    decision = decide(
        await store.seen_in(conn, cause.occurrence), await store.open_incident(conn, cause.key)
    )
    if isinstance(decision, AlreadySeen):
        return Handled(decision.incident_id, Outcome.ALREADY_SEEN)
    if isinstance(decision, Attach):
        attached = await response.attach_cause(
            rt,
            conn,
            decision.incident_id,
            source=cause.source,
            actor=cause.actor,
            detail={"occurrence": cause.occurrence, "summary": cause.summary},
            causation_id=causation_id,
        )
        if attached:  # False: closed by the team meanwhile; a new incident is raised
            await store.record(conn, cause, decision.incident_id, raised=False, at=utcnow())
            return Handled(decision.incident_id, Outcome.ATTACHED)
    incident_id, at = await response.raise_in(
        rt,
        conn,
        summary=cause.summary,
        source=cause.source,
        actor=cause.actor,
        causation_id=causation_id,
    )
    await store.record(conn, cause, incident_id, raised=True, at=at)
    return Handled(incident_id, Outcome.RAISED)


async def report_broken_log(
    rt: ServiceRuntime, *, service: str, first_broken: int | None, rewritten: bool
) -> Handled:
    """`expensura log verify` found `service`'s log broken or rewritten. Raises
    NothingBroken."""
    cause = broken_log_cause(service, first_broken, rewritten)
    async with rt.engine.begin() as conn:
        return await handle(rt, conn, cause)
