"""The one question every service asks before it uses or discloses personal data (RGT-4),
over HTTP: parse, ask the decision service, answer with the basis."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from expensura_consent.decisions import service
from expensura_consent.decisions.domain import (
    Decision,
    DecisionNotFound,
    NotAskable,
    ReleaseRefused,
    check_askable,
)
from expensura_consent.decisions.store import RecordedDecision
from expensura_events.auth import Principal
from expensura_events.contracts.decisions import (
    Basis,
    BasisKind,
    DecisionOut,
    DecisionRequest,
    ReleaseRequest,
)
from expensura_events.envelope import Actor
from expensura_events.fields import Identifier, Instant, SingleLine
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_events.web.auth import Runtime, callers, staff_with
from expensura_events.web.problems import Problem

# Services call these from inside; the API gateway does not route /internal outside.
router = APIRouter(tags=["decisions"])
Auditor = Annotated[
    Principal, Depends(staff_with(StaffRole.PRIVACY_OFFICER, StaffRole.ADMINISTRATOR))
]


def staff_actor(who: Principal) -> Actor:
    """The reader as the access record names them: with the role that let them read."""
    role = next((r for r in READER_ROLES if r in who.roles), None)
    return Actor(kind=who.kind, id=who.id, role=role)


READER_ROLES = (StaffRole.PRIVACY_OFFICER.value, StaffRole.ADMINISTRATOR.value)


class AsOf(BaseModel):
    subject_id: str
    purpose: Purpose
    at: datetime
    basis: Basis
    from_event: UUID | None


class NotFound(Problem):
    status, title = 404, "No such decision"


def _basis(decision: Decision, *, evidence: bool = False) -> Basis:
    """A decision's answer names the invocation, not its evidence (which stays sealed at
    consent); the as-of view an auditor reads shows the evidence the log recorded."""
    if decision.consent_id is not None:
        return Basis(kind=BasisKind.CONSENT, consent_id=decision.consent_id)
    if decision.ground is not None:
        return Basis(
            kind=BasisKind.LEGAL_GROUND,
            invocation_id=decision.ground.invocation_id,
            ground=decision.ground.ground,
            evidence_reference=decision.ground.evidence_reference if evidence else None,
        )
    return Basis(kind=BasisKind.NONE)


def _out(recorded: RecordedDecision) -> DecisionOut:
    return DecisionOut(
        decision_id=recorded.decision_id,
        subject_id=recorded.subject_id,
        purpose=recorded.purpose,
        recipient=recorded.recipient,
        allowed=recorded.decision.allowed,
        reason=recorded.decision.reason,
        basis=_basis(recorded.decision),
        decided_at=recorded.decided_at,
    )


class NotTheRequester(Problem):
    status, title = 403, "The requester is not the calling service"


class NotAskableProblem(Problem):
    status, title = 403, "Not a question this service may ask"


class ReleaseRefusedProblem(Problem):
    status, title = 403, "Release refused"


@router.post("/internal/decisions", responses={403: {}})
async def make_decision(
    body: DecisionRequest,
    rt: Runtime,
    caller: Annotated[str, callers("sharing-gateway", "loans")],
) -> DecisionOut:
    """May S's data of categories C be used for purpose P (and disclosed to R)? Write the
    decision id into the event that records what you then did. With `fields`, the decision
    is also a grant identity may redeem, once, for those fields."""
    if body.requester != caller:
        raise NotTheRequester(f"{caller} asked as {body.requester}.")
    try:
        check_askable(caller, body.purpose, wants_grant=body.fields is not None)
    except NotAskable as exc:
        raise NotAskableProblem(str(exc)) from None
    question = service.Question(
        subject_id=body.subject_id,
        purpose=body.purpose,
        categories=frozenset(c.value for c in body.categories),
        recipient=body.recipient,
        requester=caller,
        fields=None if body.fields is None else frozenset(body.fields),
    )
    return _out(await service.make_decision(rt, question))


@router.post(
    "/internal/decisions/{decision_id}/release",
    responses={403: {}},
    dependencies=[callers("identity")],
)
async def redeem_decision(decision_id: UUID, body: ReleaseRequest, rt: Runtime) -> DecisionOut:
    """Identity, about to release values under this decision: may it, now? Once, within
    seconds of the decision, no wider than decided, and only if still allowed; the answer
    is the decision as of now (its basis is the one to record)."""
    ask = service.ReleaseAsk(
        subject_id=body.subject_id,
        recipient=body.recipient,
        categories=frozenset(c.value for c in body.categories),
        fields=frozenset(body.fields),
    )
    try:
        return _out(await service.redeem(rt, decision_id, ask))
    except ReleaseRefused as exc:
        raise ReleaseRefusedProblem(str(exc)) from None


@router.get(
    "/internal/decisions/{decision_id}",
    responses={404: {}},
    dependencies=[callers("sharing-gateway", "identity")],
)
async def get_decision(decision_id: UUID, rt: Runtime) -> DecisionOut:
    try:
        return _out(await service.decision(rt, decision_id))
    except DecisionNotFound:
        raise NotFound(f"No decision {decision_id}.") from None


@router.get("/v1/subjects/{subject_id}/basis")
async def basis_at(
    subject_id: Annotated[Identifier, Path()],
    purpose: Purpose,
    at: Annotated[Instant, Query(description="ISO 8601 instant with its UTC offset")],
    rt: Runtime,
    auditor: Auditor,
    case_reference: Annotated[SingleLine, Query(max_length=200)] | None = None,
) -> AsOf:
    """Which consent or legal ground was in effect for the subject and purpose at `at`,
    folded from consent's log (not its tables). The read is recorded: the subject sees it
    (`platform.PersonalDataAccessed`, with the case if given) in their data."""
    found = await service.basis_at(
        rt, subject_id, purpose, at, staff_actor(auditor), case_reference
    )
    if found is None:
        return AsOf(
            subject_id=subject_id,
            purpose=purpose,
            at=at,
            basis=Basis(kind=BasisKind.NONE),
            from_event=None,
        )
    basis = _basis(
        Decision(True, "as of", consent_id=found.consent_id, ground=found.ground), evidence=True
    )
    return AsOf(
        subject_id=subject_id, purpose=purpose, at=at, basis=basis, from_event=found.from_event
    )
