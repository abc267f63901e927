"""Data-subject rights use cases: the export (RGT-1), account cancellation and its way to
erasure (RUL-2, RGT-3, POL-2), and the certificate. Every state change goes through the
domain's TRANSITIONS and the store's compare-and-set, in the transaction of its event."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID, uuid4

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.platform import RetentionHoldEnded
from expensura_events.catalog.rights import (
    AccountCancellationRequested,
    AccountCancellationWithdrawn,
    DataExportDelivered,
    DataExportRequested,
    ErasureCertificateIssued,
    ErasureConfirmed,
    ErasureEscalated,
    ErasureRequested,
    ProcessingStopped,
)
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, LegalBasis, utcnow
from expensura_events.metrics import Reading
from expensura_events.obligations import enforces
from expensura_events.privacy.restrictions import Restriction, restrict
from expensura_events.privacy.shredding import ERASURE_BASIS, shred_subject
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_identity.auth.service import revoke_principal
from expensura_identity.rights import clients, store
from expensura_identity.rights.domain import (
    ERASURE_PARTICIPANTS,
    RIGHTS_BASIS,
    CancellationAction,
    CancellationAlreadyOpen,
    CancellationRecord,
    CancellationState,
    CannotWithdraw,
    Certificate,
    CertificateNotIssued,
    NoCancellation,
    allows,
    can_withdraw,
    cancellation_stream,
    chase,
    cooling_off_until,
    erasure_overdue,
    export_document,
    export_stream,
    held_records,
    missing_confirmations,
    render_html,
    render_json,
)
from expensura_identity.settings import RIGHTS_WORKER, identity_settings

log = structlog.get_logger("expensura.identity.rights")


def _user(subject_id: str) -> Actor:
    return Actor(kind=ActorKind.USER, id=subject_id)


def _system() -> Actor:
    return Actor.system("identity.rights")


async def _record(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    request: CancellationRecord,
    event: DomainEvent,
    *,
    actor: Actor,
    purpose: Purpose = Purpose.LEGAL_COMPLIANCE,
    basis: LegalBasis = ERASURE_BASIS,
    causation_id: UUID | None = None,
) -> EventEnvelope:
    [recorded] = await rt.append(
        conn,
        [
            rt.envelope(
                event,
                stream_id=cancellation_stream(request.request_id),
                subject_id=request.subject_id,
                actor=actor,
                purpose=purpose,
                legal_basis=basis,
                causation_id=causation_id,
            )
        ],
    )
    return recorded


# --- the export (RGT-1) --------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    export_id: UUID
    body: bytes
    media_type: str
    sha256: str
    extension: str


async def export(rt: ServiceRuntime, subject_id: str, authorization: str, fmt: str) -> Export:
    """Everything held about the subject in every service, as one JSON file (or an HTML
    page). The request and the delivery (with the digest of exactly the bytes delivered)
    are events. Raises ExportIncomplete (nothing delivered)."""
    export_id = uuid4()
    stream = export_stream(export_id)
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    DataExportRequested(export_id=export_id, format=fmt),
                    stream_id=stream,
                    subject_id=subject_id,
                    actor=_user(subject_id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=RIGHTS_BASIS,
                )
            ],
        )
    parts = await clients.subject_data(
        rt.settings.service_urls, ERASURE_PARTICIPANTS, authorization
    )
    document = export_document(export_id, subject_id, utcnow(), parts)
    # Serialised once: the digest recorded and sent is of exactly the bytes delivered, so
    # the user can check the file they received.
    if fmt == "html":
        body, media_type = render_html(document).encode(), "text/html; charset=utf-8"
    else:
        body, media_type = render_json(document), "application/json"
    digest = hashlib.sha256(body).hexdigest()
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    DataExportDelivered(export_id=export_id, services=sorted(parts), sha256=digest),
                    stream_id=stream,
                    subject_id=subject_id,
                    actor=_user(subject_id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=RIGHTS_BASIS,
                )
            ],
        )
    return Export(export_id, body, media_type, digest, fmt)


# --- cancellation ----------------------------------------------------------------------------


async def open_cancellation(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    subject_id: str,
    *,
    reason: str,
    actor: Actor,
    causation_id: UUID | None = None,
) -> CancellationRecord:
    """A cancellation request, from the user's own request or from their refusal of a
    policy version (POL-2), in the caller's transaction. One open request per subject:
    raises CancellationAlreadyOpen."""
    settings = identity_settings(rt)
    if (existing := await store.open_request(conn, subject_id)) is not None:
        raise CancellationAlreadyOpen(existing)
    request_id, now = uuid4(), utcnow()
    until = cooling_off_until(now, settings.cooling_off_seconds)
    await store.insert(conn, request_id, subject_id, now, until)
    request = CancellationRecord(
        request_id, subject_id, CancellationState.COOLING_OFF, now, until, None, 0
    )
    await rt.append(
        conn,
        [
            rt.envelope(
                AccountCancellationRequested(
                    request_id=request_id, cooling_off_until=until, reason=reason
                ),
                stream_id=cancellation_stream(request_id),
                subject_id=subject_id,
                actor=actor,
                purpose=Purpose.ACCOUNT_MANAGEMENT,
                legal_basis=RIGHTS_BASIS,
                causation_id=causation_id,
            )
        ],
        expected_version=0,
    )
    return request


async def cancel_account(rt: ServiceRuntime, subject_id: str) -> CancellationRecord:
    """The user cancels their account. Nothing is erased during cooling-off."""
    async with rt.engine.begin() as conn:
        request = await open_cancellation(
            rt, conn, subject_id, reason="user-request", actor=_user(subject_id)
        )
    rt.doorbell(RIGHTS_WORKER).ring()  # committed: the worker sleeps until its cooling-off ends
    return request


async def my_cancellation(rt: ServiceRuntime, subject_id: str) -> CancellationRecord:
    """The subject's latest request. Raises NoCancellation."""
    async with rt.engine.connect() as conn:
        request = await store.latest(conn, subject_id)
    if request is None:
        raise NoCancellation(subject_id)
    return request


async def withdraw(rt: ServiceRuntime, subject_id: str) -> CancellationRecord:
    """Take the cancellation back during cooling-off. Raises NoCancellation,
    CannotWithdraw."""
    request = await my_cancellation(rt, subject_id)
    if not can_withdraw(request.state):
        raise CannotWithdraw(f"The request is {request.state.value}.")
    async with rt.engine.begin() as conn:
        to = await store.transition(conn, request, CancellationAction.WITHDRAW)
        if to is None:
            raise CannotWithdraw("The cooling-off period has just ended.")
        await _record(
            rt,
            conn,
            request,
            AccountCancellationWithdrawn(request_id=request.request_id),
            actor=_user(subject_id),
            purpose=Purpose.ACCOUNT_MANAGEMENT,
            basis=RIGHTS_BASIS,
        )
    return replace(request, state=to)


async def advance_cancellations(rt: ServiceRuntime) -> datetime | None:
    """One round of the rights worker: cooling-off over → processing stopped → erasure
    requested and the subject's key destroyed; the stores that did not confirm are asked
    again, then the request is escalated. Returns when the next cooling-off period ends
    (None: none is running), the worker's next round at the latest."""
    settings = identity_settings(rt)
    now = utcnow()
    async with rt.engine.connect() as conn:
        due = await store.due(conn, now)
        next_end = await store.next_cooling_off_end(conn, now)
    for request in due:
        if request.state is CancellationState.COOLING_OFF:
            stopped = await stop_processing(rt, request)
            if stopped is not None:
                await request_erasure(rt, stopped)
        elif request.state is CancellationState.PROCESSING_STOPPED:
            await request_erasure(rt, request)
        else:  # erasing: finish a shredding a crash interrupted, then chase the stores
            await _shred(rt, request)
            if erasure_overdue(request.erasure_requested_at, now, settings.erasure_retry_seconds):
                await chase_stores(rt, request)
    return next_end


@enforces("RUL-2")
async def stop_processing(
    rt: ServiceRuntime, request: CancellationRecord
) -> CancellationRecord | None:
    """The cooling-off period is over: every session is revoked and identity restricts the
    subject at once; every other service follows `ProcessingStopped`. None if the request
    moved meanwhile (withdrawn, or another worker got there first)."""
    async with rt.engine.begin() as conn:
        to = await store.transition(conn, request, CancellationAction.STOP_PROCESSING)
        if to is None:
            return None
        await revoke_principal(conn, request.subject_id)
        await restrict(conn, request.subject_id, Restriction.PROCESSING_STOPPED, request.request_id)
        await _record(
            rt, conn, request, ProcessingStopped(request_id=request.request_id), actor=_system()
        )
    return replace(request, state=to)


@enforces("RGT-3")
async def request_erasure(rt: ServiceRuntime, request: CancellationRecord) -> None:
    """Ask every store to erase (their `subject-lifecycle` projections follow the event),
    then destroy the subject's key."""
    attempt = 1
    async with rt.engine.begin() as conn:
        to = await store.transition(
            conn,
            request,
            CancellationAction.REQUEST_ERASURE,
            erasure_requested_at=utcnow(),
            attempts=attempt,
        )
        if to is None:
            return
        await _record(
            rt,
            conn,
            request,
            ErasureRequested(request_id=request.request_id, attempt=attempt),
            actor=_system(),
        )
    await _shred(rt, request)


async def _shred(rt: ServiceRuntime, request: CancellationRecord) -> None:
    await shred_subject(
        rt, request.subject_id, f"account cancellation {request.request_id}", _system()
    )


async def chase_stores(rt: ServiceRuntime, request: CancellationRecord) -> None:
    """Stores that have not confirmed in time are asked again; after the last attempt the
    request is escalated to a person."""
    settings = identity_settings(rt)
    async with rt.engine.connect() as conn:
        complete = not missing_confirmations(
            await store.confirmed_services(conn, request.request_id)
        )
    if complete:
        # Every store confirmed but no certificate: the key was not destroyed when the last
        # confirmation came (a crash between the erasure request and the shredding, or a
        # fast store). Finish the shredding (idempotent), then certify from the key store.
        await _shred(rt, request)
        async with rt.engine.begin() as conn:
            await _certify_if_complete(rt, conn, request.request_id, request.subject_id, None)
        return
    async with rt.engine.begin() as conn:
        missing = missing_confirmations(await store.confirmed_services(conn, request.request_id))
        if not missing:
            return  # completed meanwhile: the next round certifies
        action = chase(request.attempts, settings.erasure_max_attempts)
        attempts = request.attempts + (1 if action is CancellationAction.ASK_AGAIN else 0)
        to = await store.transition(
            conn, request, action, erasure_requested_at=utcnow(), attempts=attempts
        )
        if to is None:
            return  # certified meanwhile, or another worker chased them
        event: DomainEvent = (
            ErasureEscalated(request_id=request.request_id, missing=missing)
            if action is CancellationAction.ESCALATE
            else ErasureRequested(request_id=request.request_id, attempt=attempts)
        )
        await _record(rt, conn, request, event, actor=_system())
    if action is CancellationAction.ESCALATE:
        log.error("rights.erasure_escalated", request_id=str(request.request_id), missing=missing)


async def confirm_erasure(rt: ServiceRuntime, conn: AsyncConnection, event: EventEnvelope) -> None:
    """One store's `rights.ErasureConfirmed`; with the one that completes the set, the
    certificate is issued in the same transaction (`rights.ErasureCertificateIssued`) and
    the request is certified."""
    payload = event.payload
    if not isinstance(payload, ErasureConfirmed) or event.subject_id is None:
        return
    await store.add_confirmation(
        conn,
        payload.request_id,
        payload.service,
        event.occurred_at,
        payload.purged,
        payload.retained,
        event.event_id,
    )
    await _certify_if_complete(rt, conn, payload.request_id, event.subject_id, event.event_id)


@enforces("RGT-3")
async def _certify_if_complete(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    request_id: UUID,
    subject_id: str,
    causation_id: UUID | None,
) -> None:
    """Issue the certificate once every store confirmed and the key store no longer holds
    the subject's key: what the certificate states is read, not assumed."""
    confirmed = await store.confirmed_services(conn, request_id)
    if missing_confirmations(confirmed) or await store.certificate(conn, request_id):
        return
    if await rt.keys.live(subject_id):  # any service's key of the subject, not just ours
        log.warning("rights.certificate_waits_for_key_destruction", request_id=str(request_id))
        return  # the chase finishes the shredding, then certifies
    services = sorted(confirmed)
    request = await store.for_update(conn, request_id)
    [issued] = await rt.append(
        conn,
        [
            rt.envelope(
                ErasureCertificateIssued(
                    request_id=request_id, services=services, key_destroyed=True
                ),
                stream_id=cancellation_stream(request_id),
                subject_id=subject_id,
                actor=Actor.system("identity"),
                purpose=Purpose.LEGAL_COMPLIANCE,
                legal_basis=ERASURE_BASIS,
                causation_id=causation_id,
            )
        ],
    )
    await store.insert_certificate(
        conn, Certificate(request_id, subject_id, utcnow(), services, issued.event_id)
    )
    # The certificate records what happened whatever the request's row says; the row
    # follows when the table allows (it always does for a request that asked for erasure).
    if request is not None and allows(request.state, CancellationAction.CERTIFY):
        await store.transition(conn, request, CancellationAction.CERTIFY)
    else:
        log.warning(
            "rights.certified_out_of_order",
            request_id=str(request_id),
            state=request.state.value if request else None,
        )


async def note_hold_ended(conn: AsyncConnection, event: EventEnvelope) -> None:
    """A store ended one of a subject's retention holds (`platform.RetentionHoldEnded` in
    its own log): the certificate shows that class erased."""
    payload = event.payload
    if not isinstance(payload, RetentionHoldEnded) or event.subject_id is None:
        return
    await store.add_hold_ended(
        conn, event.subject_id, event.source, payload.hold, event.occurred_at, event.event_id
    )


async def certificate(rt: ServiceRuntime, request_id: UUID) -> Certificate:
    """The certificate, with what each store kept under a legal hold: held until its end,
    or erased. Raises CertificateNotIssued (not yet: every store must confirm first)."""
    async with rt.engine.connect() as conn:
        cert = await store.certificate(conn, request_id)
        if cert is None:
            raise CertificateNotIssued(request_id)
        retention = held_records(
            await store.retained(conn, request_id),
            await store.holds_ended(conn, cert.subject_id),
        )
    return replace(cert, retention=retention)


async def readings(rt: ServiceRuntime) -> list[Reading]:
    """Identity's gauges at a scrape of `/metrics`: the erasures not yet certified."""
    async with rt.engine.connect() as conn:
        pending = await store.erasures_pending(conn)
    return [Reading("expensura_erasures_pending", pending)]
