"""HTTP routes for accounts: sign-up, and the internal release to the sharing gateway."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from expensura_events.catalog.identity import DataReleaseRefused
from expensura_events.fields import EmailAddress, FieldName, Identifier, PhoneNumber, Secret
from expensura_events.runtime import ServiceRuntime
from expensura_events.web.auth import Runtime, callers
from expensura_events.web.problems import Problem
from expensura_identity.accounts import service
from expensura_identity.accounts.clients import ConsentUnavailable
from expensura_identity.accounts.domain import EmailTaken, InvalidAccountDetails, ReleaseRefused

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
_IDENTIFIER = TypeAdapter(Identifier)
_FIELDS = TypeAdapter(list[FieldName])


async def _attempt_refused(
    request: Request, rt: ServiceRuntime, caller: str | None, reason: str
) -> None:
    """A release asked by anything but the gateway leaves a refusal in the log, for the
    subject it named (when the name is a valid id at all)."""
    try:
        subject_id = _IDENTIFIER.validate_python(request.path_params.get("subject_id"))
        fields = _FIELDS.validate_python(request.query_params.getlist("fields")[:10])
    except ValidationError:
        return  # nothing to attribute it to; the log line remains
    recipient = request.query_params.get("recipient", "")[:200] or None
    await service.record_refused_release(
        rt,
        subject_id,
        DataReleaseRefused(
            decision_id=request.query_params.get("decision_id", "")[:100] or None,
            recipient=recipient if recipient and recipient.isprintable() else None,
            fields=fields,
            caller=caller,
            reason=f"caller refused: {reason}"[:300],
        ),
    )


# What identity hands the sharing gateway for a disclosure, and only on a live decision.
# Contacts leave identity only to the sharing gateway; any other caller is refused, logged.
internal_router = APIRouter(
    prefix="/internal/subjects",
    tags=["internal"],
    dependencies=[callers("sharing-gateway", on_refused=_attempt_refused)],
)


class OpenAccountRequest(BaseModel):
    email: EmailAddress
    phone: PhoneNumber | None = None
    password: Annotated[Secret, Field(min_length=10)]


class AccountCreated(BaseModel):
    account_id: UUID
    status: str


class Values(BaseModel):
    subject_id: str
    values: dict[str, str | None]


class InvalidDetails(Problem):
    status, title = 422, "Invalid account details"


class EmailTakenProblem(Problem):
    status, title = 409, "An account with this e-mail exists"


class DecisionRefused(Problem):
    status, title = 403, "No decision allows this release"


class ConsentUnavailableProblem(Problem):
    status, title = 503, "Consent service unavailable"


@router.post("", status_code=201, responses={409: {}, 422: {}, 503: {}})
async def open_account_route(body: OpenAccountRequest, rt: Runtime) -> AccountCreated:
    """Sign up. The account row and its `AccountOpened` event commit together."""
    try:
        opened = await service.sign_up(rt, body.email, body.phone, body.password)
    except InvalidAccountDetails as exc:
        raise InvalidDetails(str(exc)) from None
    except EmailTaken:
        raise EmailTakenProblem("Sign in instead, or use another address.") from None
    return AccountCreated(account_id=opened.account_id, status=opened.status.value)


@internal_router.get("/{subject_id}/disclosable", responses={403: {}, 503: {}})
async def disclosable(
    subject_id: Annotated[Identifier, Path()],
    decision_id: UUID,
    recipient: Annotated[Identifier, Query()],
    rt: Runtime,
    fields: Annotated[list[FieldName], Query(max_length=10)],
) -> Values:
    """The subject's contact values a live consent decision allows the recipient to get;
    identity asks consent again which decision this is."""
    try:
        values = await service.release_contact(rt, subject_id, decision_id, recipient, fields)
    except ConsentUnavailable as exc:
        raise ConsentUnavailableProblem(f"{exc}; nothing released.", retry_after=5) from None
    except ReleaseRefused as exc:
        raise DecisionRefused(str(exc)) from None
    return Values(subject_id=subject_id, values=values)
