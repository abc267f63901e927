"""Opening a cancellation request: from the user's own request, or from their refusal of a
policy version (POL-2). One open request per subject."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.consent import PolicyVersionRefused
from expensura_events.catalog.rights import AccountCancellationRequested
from expensura_events.envelope import Actor, EventEnvelope, LegalBasis, utcnow
from expensura_events.projections import Projection
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import LegalGround, Purpose
from expensura_identity.rights.domain import OPEN_STATES, CancellationState
from expensura_identity.rights.tables import cancellation_requests
from expensura_identity.settings import IdentitySettings

RIGHTS_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="data-subject rights")


class CancellationAlreadyOpen(Exception):
    def __init__(self, request_id: UUID) -> None:
        super().__init__(f"request {request_id} is already open")
        self.request_id = request_id


@dataclass(frozen=True)
class Opened:
    request_id: UUID
    requested_at: datetime
    cooling_off_until: datetime


async def open_cancellation(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    subject_id: str,
    *,
    reason: str,
    actor: Actor,
    causation_id: UUID | None = None,
) -> Opened:
    settings = rt.settings
    assert isinstance(settings, IdentitySettings)
    existing = (
        await conn.execute(
            select(cancellation_requests.c.request_id).where(
                cancellation_requests.c.subject_id == subject_id,
                cancellation_requests.c.state.in_([s.value for s in OPEN_STATES]),
            )
        )
    ).first()
    if existing is not None:
        raise CancellationAlreadyOpen(existing.request_id)
    request_id, now = uuid4(), utcnow()
    until = now + timedelta(seconds=settings.cooling_off_seconds)
    await conn.execute(
        cancellation_requests.insert().values(
            request_id=request_id,
            subject_id=subject_id,
            state=CancellationState.COOLING_OFF.value,
            requested_at=now,
            cooling_off_until=until,
            attempts=0,
        )
    )
    await rt.append(
        conn,
        [
            rt.envelope(
                AccountCancellationRequested(
                    request_id=request_id, cooling_off_until=until, reason=reason
                ),
                stream_id=f"cancellation-{request_id}",
                subject_id=subject_id,
                actor=actor,
                purpose=Purpose.ACCOUNT_MANAGEMENT,
                legal_basis=RIGHTS_BASIS,
                causation_id=causation_id,
            )
        ],
        expected_version=0,
    )
    return Opened(request_id, now, until)


class PolicyRefusals(Projection):
    """POL-2: a user who refuses a policy version is on the cancellation path."""

    name = "policy-refusals"
    sources = ("consent",)
    tables = ()

    rt: ServiceRuntime

    def bind(self, runtime: Any) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if not isinstance(event.payload, PolicyVersionRefused) or event.subject_id is None:
            return
        with contextlib.suppress(CancellationAlreadyOpen):  # already on the way out
            await open_cancellation(
                self.rt,
                conn,
                event.subject_id,
                reason=f"policy-version-refused:{event.payload.version}",
                actor=event.actor,
                causation_id=event.event_id,
            )
