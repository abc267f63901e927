"""Real-name verification over HTTP (USE-1, COL-2)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from expensura_events.catalog.identity_verification import (
    RealNameVerificationRequested,
    RealNameVerified,
)
from expensura_events.envelope import Actor, utcnow
from expensura_events.fields import Identifier, SingleLine
from expensura_events.vocabulary import ActorKind, CollectionChannel, Purpose
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.verification.domain import (
    InvalidIdentityData,
    VerificationState,
    check,
)
from expensura_identity.verification.service import BASIS, settle
from expensura_identity.verification.tables import verification_requests

router = APIRouter(tags=["real-name verification"])


class VerificationRequest(BaseModel):
    id_number: Annotated[SingleLine, Field(max_length=18)]
    bank_card: Annotated[SingleLine, Field(max_length=19)]
    mobile: Annotated[SingleLine, Field(max_length=16)]
    face_ref: Identifier | None = None


class VerificationStatus(BaseModel):
    request_id: UUID
    state: str
    submitted_at: datetime
    verified_claims: dict[str, Any] | None = None


class InvalidData(Problem):
    status, title = 422, "Invalid identity data"


class AlreadyVerified(Problem):
    status, title = 409, "Already verified"


class NotSubmitted(Problem):
    status, title = 404, "No verification submitted"


@router.post("/v1/me/verification", status_code=202, responses={409: {}, 422: {}})
async def submit(body: VerificationRequest, caller: CurrentUser, rt: Runtime) -> VerificationStatus:
    """Submit ID card, bank card and mobile (and a face-photo reference) for verification.
    The request is kept first, then sent: if the agency is down you see `pending` and it is
    retried until it answers."""
    try:
        check(body.id_number, body.bank_card, body.mobile)
    except InvalidIdentityData as exc:
        raise InvalidData(str(exc)) from None
    request_id, now = uuid4(), utcnow()
    async with rt.engine.begin() as conn:
        done = (
            await conn.execute(
                select(verification_requests.c.request_id).where(
                    verification_requests.c.subject_id == caller.id,
                    verification_requests.c.state.in_(
                        [VerificationState.VERIFIED.value, VerificationState.PENDING.value]
                    ),
                )
            )
        ).first()
        if done is not None:
            raise AlreadyVerified(f"Request {done.request_id} is verified or still pending.")
        await conn.execute(
            verification_requests.insert().values(
                request_id=request_id,
                subject_id=caller.id,
                state=VerificationState.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    RealNameVerificationRequested(
                        request_id=request_id,
                        id_number=body.id_number,
                        bank_card=body.bank_card,
                        mobile=body.mobile,
                        face_ref=body.face_ref,
                        channel=CollectionChannel.PROVIDED_BY_USER,
                    ),
                    stream_id=f"verification-{request_id}",
                    subject_id=caller.id,
                    actor=Actor(kind=ActorKind.USER, id=caller.id),
                    purpose=Purpose.IDENTITY_VERIFICATION,
                    legal_basis=BASIS,
                )
            ],
            expected_version=0,
        )
    state = await settle(rt, request_id)  # one try now; the worker retries if need be
    return VerificationStatus(request_id=request_id, state=state, submitted_at=now)


@router.get("/v1/me/verification", responses={404: {}})
async def status(caller: CurrentUser, rt: Runtime) -> VerificationStatus:
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(verification_requests)
                .where(verification_requests.c.subject_id == caller.id)
                .order_by(verification_requests.c.created_at.desc())
                .limit(1)
            )
        ).one_or_none()
        if row is None:
            raise NotSubmitted("Submit your ID card, bank card and mobile first.")
        claims = None
        if row.state == VerificationState.VERIFIED.value:
            events = await rt.store.read_stream(conn, f"verification-{row.request_id}")
            verified = next(e.payload for e in events if isinstance(e.payload, RealNameVerified))
            claims = {
                "verification": {
                    "trust_framework": verified.trust_framework,
                    "time": verified.verified_at.isoformat(),
                    "verifier": verified.verifier,
                    "txn": verified.transaction_id,
                    "evidence": json.loads(verified.evidence),
                }
            }
            await rt.record_access(
                conn,
                subject_id=caller.id,
                actor=Actor(kind=ActorKind.USER, id=caller.id),
                purpose=Purpose.IDENTITY_VERIFICATION,
                fields=["verified_claims"],
                categories=["pd:IdentityVerification"],
            )
    return VerificationStatus(
        request_id=row.request_id,
        state=row.state,
        submitted_at=row.created_at,
        verified_claims=claims,
    )
