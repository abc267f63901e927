"""Real-name verification use cases: submitting a request (kept first, then sent), settling
it with the agency (retried until it answers), and the subject's view of the result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import structlog

from expensura_events.catalog.identity_verification import (
    RealNameVerificationRequested,
    RealNameVerified,
)
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.obligations import enforces
from expensura_events.registry import personal_categories
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, CollectionChannel, LegalGround, Purpose
from expensura_identity.settings import VERIFICATION_WORKER, identity_settings
from expensura_identity.verification import clients, store
from expensura_identity.verification.domain import (
    BLOCKS_NEW_REQUEST,
    AlreadyVerified,
    NotSubmitted,
    VerificationAction,
    VerificationState,
    agency_answer,
    check,
    retry_delay,
    transition,
    verification_stream,
    verified_claims,
)

log = structlog.get_logger("expensura.identity.verification")
BASIS = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="loan services")


@dataclass(frozen=True)
class Submission:
    id_number: str
    bank_card: str
    mobile: str
    face_ref: str | None


@dataclass(frozen=True)
class Status:
    request_id: UUID
    state: str
    submitted_at: datetime
    verified_claims: dict[str, Any] | None = None


@enforces("USE-1")
async def submit(rt: ServiceRuntime, subject_id: str, data: Submission) -> Status:
    """Keep the request (its row and its encrypted event commit together), then ask the
    agency once; if it does not answer the request stays pending and the worker retries.
    Raises InvalidIdentityData (nothing kept), AlreadyVerified."""
    check(data.id_number, data.bank_card, data.mobile)
    request_id, now = uuid4(), utcnow()
    async with rt.engine.begin() as conn:
        if (done := await store.any_in(conn, subject_id, BLOCKS_NEW_REQUEST)) is not None:
            raise AlreadyVerified(done)
        await store.insert(conn, request_id, subject_id, now)
        await rt.append(
            conn,
            [
                rt.envelope(
                    RealNameVerificationRequested(
                        request_id=request_id,
                        id_number=data.id_number,
                        bank_card=data.bank_card,
                        mobile=data.mobile,
                        face_ref=data.face_ref,
                        channel=CollectionChannel.PROVIDED_BY_USER,
                    ),
                    stream_id=verification_stream(request_id),
                    subject_id=subject_id,
                    actor=Actor(kind=ActorKind.USER, id=subject_id),
                    purpose=Purpose.IDENTITY_VERIFICATION,
                    legal_basis=BASIS,
                )
            ],
            expected_version=0,
        )
    state = await settle(rt, request_id)  # one try now; the worker retries if need be
    if state == VerificationState.PENDING:  # committed: the worker sleeps until its retry
        rt.doorbell(VERIFICATION_WORKER).ring()
    return Status(request_id, state, now)


async def settle(rt: ServiceRuntime, request_id: UUID) -> str:
    """Ask the agency about one pending request; returns the state afterwards ("unknown"
    for no such request). The row stays locked while the agency is asked, so two workers
    never ask twice."""
    settings = identity_settings(rt)
    async with rt.engine.begin() as conn:
        row = await store.claim(conn, request_id)
        if row is None:
            return "unknown"
        if row.state is not VerificationState.PENDING:
            return row.state
        [requested] = await rt.store.read_stream(conn, verification_stream(request_id))
        p = requested.payload
        if not isinstance(p, RealNameVerificationRequested):
            raise TypeError(f"{verification_stream(request_id)} starts with {p.event_type}")
        attempts, now = row.attempts + 1, utcnow()
        try:
            answer = await clients.verify(
                settings.verification_agency_url,
                str(request_id),
                p.id_number,
                p.bank_card,
                p.mobile,
                p.face_ref,
                timeout=settings.verification_timeout_seconds,
            )
        except clients.AgencyUnavailable as exc:
            to = transition(row.state, VerificationAction.AGENCY_UNAVAILABLE)
            delay = retry_delay(attempts, base=settings.verification_retry_seconds)
            await store.transition(
                conn,
                request_id,
                row.state,
                to,
                attempts=attempts,
                at=now,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=str(exc)[:500],
            )
            log.info(
                "verification.agency_unavailable", request_id=str(request_id), attempts=attempts
            )
            return to
        action, event = agency_answer(request_id, answer.outcome, answer.raw)
        to = transition(row.state, action)
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=verification_stream(request_id),
                    subject_id=row.subject_id,
                    actor=Actor.system("identity.verification"),
                    purpose=Purpose.IDENTITY_VERIFICATION,
                    legal_basis=BASIS,
                    causation_id=requested.event_id,
                )
            ],
        )
        await store.transition(conn, request_id, row.state, to, attempts=attempts, at=now)
        return to


async def status(rt: ServiceRuntime, subject_id: str) -> Status:
    """The subject's latest request; once verified, with its claims (a recorded read).
    Raises NotSubmitted."""
    async with rt.engine.begin() as conn:
        row = await store.latest(conn, subject_id)
        if row is None:
            raise NotSubmitted(subject_id)
        claims = None
        if row.state is VerificationState.VERIFIED:
            events = await rt.store.read_stream(conn, verification_stream(row.request_id))
            [verified] = [e.payload for e in events if isinstance(e.payload, RealNameVerified)]
            claims = verified_claims(verified)
            await rt.record_access(
                conn,
                subject_id=subject_id,
                actor=Actor(kind=ActorKind.USER, id=subject_id),
                purpose=Purpose.IDENTITY_VERIFICATION,
                fields=["verified_claims"],
                categories=personal_categories(RealNameVerified),
            )
    return Status(row.request_id, row.state, row.created_at, claims)
