"""HTTP routes for accounts: sign-up, and the internal release to the sharing gateway."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from expensura_events.catalog.identity import DataReleaseRefused
from expensura_events.fields import EmailAddress, FieldName, Identifier, PhoneNumber, Secret
from expensura_events.runtime import ServiceRuntime
from expensura_events.web.auth import Runtime, callers
from expensura_events.web.problems import Problem
from expensura_identity.accounts import service
from expensura_identity.accounts.clients import ConsentUnavailable
from expensura_identity.accounts.domain import InvalidAccountDetails, ReleaseRefused
from expensura_identity.email_proof import service as email_proof

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


class SignUpAccepted(BaseModel):
    """The one answer to every well-formed sign-up, whether or not the e-mail has an account."""

    status: str = "accepted"
    detail: str = (
        "Check your mailbox. A new account gets a confirmation code to enter with "
        "POST /v1/me/email-proof once signed in; an address that already has an account "
        "gets a message saying so."
    )


class Values(BaseModel):
    subject_id: str
    values: dict[str, str | None]


class InvalidDetails(Problem):
    status, title = 422, "Invalid account details"


class DecisionRefused(Problem):
    status, title = 403, "No decision allows this release"


class ConsentUnavailableProblem(Problem):
    status, title = 503, "Consent service unavailable"


@router.post("", status_code=202, responses={422: {}})
async def open_account_route(
    body: OpenAccountRequest, rt: Runtime, background: BackgroundTasks
) -> SignUpAccepted:
    """Sign up. The answer is the same whether or not the e-mail has an account (no one
    learns from it who is a customer): a new account is opened with its e-mail unproven and
    mailed a one-time code; the owner of a taken e-mail is mailed a notice instead. The mail
    leaves after the answer, so its delivery time does not show either."""
    try:
        answered = await service.sign_up(rt, body.email, body.phone, body.password)
    except InvalidAccountDetails as exc:
        raise InvalidDetails(str(exc)) from None
    background.add_task(email_proof.sender(rt).send_quietly, answered.mail)
    return SignUpAccepted()


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
