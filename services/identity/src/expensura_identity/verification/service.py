"""Submitting a verification and settling it with the agency, retried until it answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import select, update

from expensura_events.catalog.identity_verification import (
    RealNameVerificationFailed,
    RealNameVerificationRequested,
    RealNameVerified,
)
from expensura_events.db_errors import error_fields
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import LegalGround, Purpose
from expensura_identity.settings import IdentitySettings
from expensura_identity.verification import agency
from expensura_identity.verification.domain import VerificationState, retry_delay
from expensura_identity.verification.tables import verification_requests

log = structlog.get_logger("expensura.identity.verification")
BASIS = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="loan services")


async def settle(rt: ServiceRuntime, request_id: UUID) -> str:
    """Ask the agency about one pending request; returns the state afterwards."""
    settings = rt.settings
    assert isinstance(settings, IdentitySettings)
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(verification_requests)
                .where(verification_requests.c.request_id == request_id)
                .with_for_update(skip_locked=True)
            )
        ).one_or_none()
        if row is None or row.state != VerificationState.PENDING.value:
            return row.state if row is not None else "unknown"
        [requested] = await rt.store.read_stream(conn, f"verification-{request_id}")
        p = requested.payload
        assert isinstance(p, RealNameVerificationRequested)
        try:
            answer = await agency.verify(
                settings.verification_agency_url,
                str(request_id),
                p.id_number,
                p.bank_card,
                p.mobile,
                p.face_ref,
                timeout=settings.verification_timeout_seconds,
            )
        except agency.AgencyUnavailable as exc:
            attempts = row.attempts + 1
            await conn.execute(
                update(verification_requests)
                .where(verification_requests.c.request_id == request_id)
                .values(
                    attempts=attempts,
                    last_error=str(exc)[:500],
                    updated_at=utcnow(),
                    next_attempt_at=utcnow()
                    + timedelta(
                        seconds=retry_delay(attempts, base=settings.verification_retry_seconds)
                    ),
                )
            )
            log.info(
                "verification.agency_unavailable", request_id=str(request_id), attempts=attempts
            )
            return VerificationState.PENDING.value
        actor = Actor.system("identity.verification")
        envelope_args: dict[str, Any] = {
            "stream_id": f"verification-{request_id}",
            "subject_id": row.subject_id,
            "actor": actor,
            "purpose": Purpose.IDENTITY_VERIFICATION,
            "legal_basis": BASIS,
            "causation_id": requested.event_id,
        }
        if answer.outcome == "verified":
            raw = answer.raw
            event: RealNameVerified | RealNameVerificationFailed = RealNameVerified(
                request_id=request_id,
                trust_framework=raw["trust_framework"],
                verified_at=datetime.fromisoformat(raw["verified_at"]),
                verifier=raw["verifier"],
                transaction_id=raw["transaction_id"],
                evidence=json.dumps(raw["evidence"]),
            )
            state = VerificationState.VERIFIED
        else:
            event = RealNameVerificationFailed(
                request_id=request_id, reason=f"agency: {answer.outcome}"
            )
            state = VerificationState.MISMATCH
        await rt.append(conn, [rt.envelope(event, **envelope_args)])
        await conn.execute(
            update(verification_requests)
            .where(verification_requests.c.request_id == request_id)
            .values(state=state.value, attempts=row.attempts + 1, updated_at=utcnow())
        )
        return state.value


async def verification_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    """Retries pending requests: an agency outage delays verification, never loses it."""
    while not stop.is_set():
        try:
            async with rt.engine.connect() as conn:
                due = (
                    await conn.execute(
                        select(verification_requests.c.request_id)
                        .where(
                            verification_requests.c.state == VerificationState.PENDING.value,
                            verification_requests.c.next_attempt_at <= utcnow(),
                        )
                        .limit(50)
                    )
                ).scalars()
                due_ids = list(due)
            for request_id in due_ids:
                await settle(rt, request_id)
        except Exception as exc:  # database down: next round
            log.warning(
                "verification.worker_failed", **error_fields(exc)
            )  # no text: it may quote data
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
