"""Real-name verification over HTTP (USE-1, COL-2)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from expensura_events.fields import Identifier, SingleLine
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.verification import service
from expensura_identity.verification.domain import (
    AlreadyVerified,
    InvalidIdentityData,
    NotSubmitted,
)

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

    @classmethod
    def of(cls, status: service.Status) -> VerificationStatus:
        return cls(
            request_id=status.request_id,
            state=status.state,
            submitted_at=status.submitted_at,
            verified_claims=status.verified_claims,
        )


class InvalidData(Problem):
    status, title = 422, "Invalid identity data"


class AlreadyVerifiedProblem(Problem):
    status, title = 409, "Already verified"


class NotSubmittedProblem(Problem):
    status, title = 404, "No verification submitted"


@router.post("/v1/me/verification", status_code=202, responses={409: {}, 422: {}})
async def submit(body: VerificationRequest, caller: CurrentUser, rt: Runtime) -> VerificationStatus:
    """Submit ID card, bank card and mobile (and a face-photo reference) for verification.
    The request is kept first, then sent: if the agency is down you see `pending` and it is
    retried until it answers."""
    data = service.Submission(body.id_number, body.bank_card, body.mobile, body.face_ref)
    try:
        return VerificationStatus.of(await service.submit(rt, caller.id, data))
    except InvalidIdentityData as exc:
        raise InvalidData(str(exc)) from None
    except AlreadyVerified as exc:
        raise AlreadyVerifiedProblem(
            f"Request {exc.request_id} is verified or still pending."
        ) from None


@router.get("/v1/me/verification", responses={404: {}})
async def status(caller: CurrentUser, rt: Runtime) -> VerificationStatus:
    try:
        return VerificationStatus.of(await service.status(rt, caller.id))
    except NotSubmitted:
        raise NotSubmittedProblem("Submit your ID card, bank card and mobile first.") from None
