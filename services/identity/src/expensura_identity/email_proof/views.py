"""Proving the account's e-mail over HTTP: the signed-in holder presents the code mailed to
it, or asks for a new one. Signed in and holding the code: the password alone (whoever chose
it) proves nothing about the mailbox, and the code alone belongs to no one until then."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks
from pydantic import BaseModel, Field

from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.email_proof import service
from expensura_identity.email_proof.domain import CODE_DIGITS, AlreadyProven, CodeRefused, TooSoon

router = APIRouter(prefix="/v1/me/email-proof", tags=["e-mail proof"])


class ProofRequest(BaseModel):
    code: Annotated[str, Field(pattern=rf"^[0-9]{{{CODE_DIGITS}}}$")]


class ProofStatus(BaseModel):
    email_proven: bool
    proven_at: datetime | None = None

    @classmethod
    def of(cls, proof: service.Proof) -> ProofStatus:
        return cls(email_proven=proof.proven_at is not None, proven_at=proof.proven_at)


class CodeSent(BaseModel):
    status: str = "sent"


class CodeRefusedProblem(Problem):
    status, title = 422, "Code refused"


class AlreadyProvenProblem(Problem):
    status, title = 409, "E-mail already proven"


class TooSoonProblem(Problem):
    status, title = 429, "A code was sent moments ago"


@router.get("")
async def proof_status(caller: CurrentUser, rt: Runtime) -> ProofStatus:
    return ProofStatus.of(await service.status(rt, UUID(caller.id)))


@router.post("", responses={422: {}})
async def prove(body: ProofRequest, caller: CurrentUser, rt: Runtime) -> ProofStatus:
    """Present the code mailed to the account's e-mail. It works once, within its lifetime,
    and after a few wrong tries not at all (ask for a new one)."""
    try:
        return ProofStatus.of(await service.prove(rt, UUID(caller.id), body.code))
    except CodeRefused as exc:
        raise CodeRefusedProblem(f"{exc.reason}.") from None


@router.post("/code", status_code=202, responses={409: {}, 429: {}})
async def new_code(caller: CurrentUser, rt: Runtime, background: BackgroundTasks) -> CodeSent:
    """Mail a new code to the account's e-mail (the last one stops working)."""
    try:
        mail = await service.new_code_for(rt, UUID(caller.id))
    except AlreadyProven:
        raise AlreadyProvenProblem("Nothing to prove.") from None
    except TooSoon as exc:
        raise TooSoonProblem("Wait before asking again.", retry_after=exc.retry_after) from None
    except CodeRefused as exc:
        raise CodeRefusedProblem(f"{exc.reason}.") from None
    background.add_task(service.sender(rt).send_quietly, mail)
    return CodeSent()
