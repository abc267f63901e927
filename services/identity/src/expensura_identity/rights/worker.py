"""Moves cancellations along: cooling-off over → processing stopped → erasure requested and
the subject's key destroyed; asks again the stores that did not confirm, then escalates."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from uuid import UUID

import structlog
from sqlalchemy import select, update

from expensura_events.catalog.rights import ErasureEscalated, ErasureRequested, ProcessingStopped
from expensura_events.db_errors import error_fields
from expensura_events.envelope import Actor, utcnow
from expensura_events.privacy.restrictions import Restriction, restrict
from expensura_events.privacy.shredding import ERASURE_BASIS, shred_subject
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_identity.auth.sessions import revoke_principal
from expensura_identity.rights.domain import CancellationState, missing_confirmations
from expensura_identity.rights.tables import cancellation_requests, erasure_confirmations
from expensura_identity.settings import IdentitySettings

log = structlog.get_logger("expensura.identity.rights")


async def cancellation_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    settings = rt.settings
    assert isinstance(settings, IdentitySettings)
    while not stop.is_set():
        try:
            await advance_cancellations(rt, settings)
        except Exception as exc:  # database down and the like: try again next round
            log.warning("rights.worker_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.rights_worker_interval_seconds)


async def advance_cancellations(rt: ServiceRuntime, settings: IdentitySettings) -> None:
    now = utcnow()
    async with rt.engine.connect() as conn:
        due = (
            await conn.execute(
                select(cancellation_requests).where(
                    (
                        (cancellation_requests.c.state == CancellationState.COOLING_OFF.value)
                        & (cancellation_requests.c.cooling_off_until <= now)
                    )
                    | (cancellation_requests.c.state == CancellationState.PROCESSING_STOPPED.value)
                    | (cancellation_requests.c.state == CancellationState.ERASING.value)
                )
            )
        ).all()
    for row in due:
        if row.state == CancellationState.COOLING_OFF.value:
            await _stop_processing(rt, row.request_id, row.subject_id)
            await _request_erasure(rt, row.request_id, row.subject_id, attempt=1)
        elif row.state == CancellationState.PROCESSING_STOPPED.value:
            await _request_erasure(rt, row.request_id, row.subject_id, attempt=1)
        else:  # erasing: finish a shredding a crash interrupted, then chase the stores
            await shred_subject(
                rt, row.subject_id, f"account cancellation {row.request_id}", _system()
            )
            overdue = row.erasure_requested_at is not None and (
                now - row.erasure_requested_at > timedelta(seconds=settings.erasure_retry_seconds)
            )
            if overdue:
                await _retry_or_escalate(rt, settings, row.request_id, row.subject_id, row.attempts)


def _system() -> Actor:
    return Actor.system("identity.rights")


async def _stop_processing(rt: ServiceRuntime, request_id: UUID, subject: str) -> None:
    async with rt.engine.begin() as conn:
        changed = await conn.execute(
            update(cancellation_requests)
            .where(
                cancellation_requests.c.request_id == request_id,
                cancellation_requests.c.state == CancellationState.COOLING_OFF.value,
            )
            .values(state=CancellationState.PROCESSING_STOPPED.value)
        )
        if changed.rowcount != 1:
            return  # withdrawn meanwhile, or another worker got there first
        await revoke_principal(conn, subject)
        # Identity stops at once; the other services follow from the event.
        await restrict(conn, subject, Restriction.PROCESSING_STOPPED, request_id)
        await rt.append(
            conn,
            [
                rt.envelope(
                    ProcessingStopped(request_id=request_id),
                    stream_id=f"cancellation-{request_id}",
                    subject_id=subject,
                    actor=_system(),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                    legal_basis=ERASURE_BASIS,
                )
            ],
        )


async def _request_erasure(
    rt: ServiceRuntime, request_id: UUID, subject: str, attempt: int
) -> None:
    async with rt.engine.begin() as conn:
        changed = await conn.execute(
            update(cancellation_requests)
            .where(
                cancellation_requests.c.request_id == request_id,
                cancellation_requests.c.state == CancellationState.PROCESSING_STOPPED.value,
            )
            .values(
                state=CancellationState.ERASING.value,
                erasure_requested_at=utcnow(),
                attempts=attempt,
            )
        )
        if changed.rowcount != 1:
            return
        await rt.append(
            conn,
            [
                rt.envelope(
                    ErasureRequested(request_id=request_id, attempt=attempt),
                    stream_id=f"cancellation-{request_id}",
                    subject_id=subject,
                    actor=_system(),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                    legal_basis=ERASURE_BASIS,
                )
            ],
        )
    await shred_subject(rt, subject, f"account cancellation {request_id}", _system())


async def _retry_or_escalate(
    rt: ServiceRuntime, settings: IdentitySettings, request_id: UUID, subject: str, attempts: int
) -> None:
    async with rt.engine.begin() as conn:
        confirmed = set(
            (
                await conn.execute(
                    select(erasure_confirmations.c.service).where(
                        erasure_confirmations.c.request_id == request_id
                    )
                )
            ).scalars()
        )
        missing = missing_confirmations(confirmed)
        if not missing:
            return  # the certificate is on its way
        escalate = attempts >= settings.erasure_max_attempts
        await conn.execute(
            update(cancellation_requests)
            .where(cancellation_requests.c.request_id == request_id)
            .values(
                state=(
                    CancellationState.ESCALATED if escalate else CancellationState.ERASING
                ).value,
                erasure_requested_at=utcnow(),
                attempts=attempts + (0 if escalate else 1),
            )
        )
        event = (
            ErasureEscalated(request_id=request_id, missing=missing)
            if escalate
            else ErasureRequested(request_id=request_id, attempt=attempts + 1)
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=f"cancellation-{request_id}",
                    subject_id=subject,
                    actor=_system(),
                    purpose=Purpose.LEGAL_COMPLIANCE,
                    legal_basis=ERASURE_BASIS,
                )
            ],
        )
    if escalate:
        log.error("rights.erasure_escalated", request_id=str(request_id), missing=missing)
