"""Data-subject rights over HTTP: access (export), account cancellation, certificates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel

from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.rights import service
from expensura_identity.rights.domain import (
    CancellationAlreadyOpen,
    CancellationRecord,
    CannotWithdraw,
    CertificateNotIssued,
    ExportIncomplete,
    NoCancellation,
)

router = APIRouter(tags=["rights"])
JSON = "application/json"
_HEADER_TEXT = r"^[\x20-\x7e]*$"  # what an Accept header may carry: printable ASCII


class ExportIncompleteProblem(Problem):
    status, title = 503, "Export incomplete"


class NoCancellationProblem(Problem):
    status, title = 404, "No open cancellation"


class CancellationExists(Problem):
    status, title = 409, "Cancellation already requested"


class CannotWithdrawProblem(Problem):
    status, title = 409, "Cancellation can no longer be withdrawn"


class CertificateNotFound(Problem):
    status, title = 404, "No such erasure certificate"


class Cancellation(BaseModel):
    request_id: UUID
    state: str
    requested_at: datetime
    cooling_off_until: datetime

    @classmethod
    def of(cls, request: CancellationRecord) -> Cancellation:
        return cls(
            request_id=request.request_id,
            state=request.state.value,
            requested_at=request.requested_at,
            cooling_off_until=request.cooling_off_until,
        )


class HeldRecordsOut(BaseModel):
    """Records a store keeps under a legal retention hold: "held until <date>", then
    "erased" once the store ended the hold."""

    service: str
    hold: str
    records: str
    status: str
    held_until: date | None
    erased_at: datetime | None


class ErasureCertificate(BaseModel):
    request_id: UUID
    subject_id: str
    issued_at: datetime
    services: list[str]
    key_destroyed: bool
    certificate_event_id: UUID
    retention: list[HeldRecordsOut] = []


@router.post(
    "/v1/me/exports",
    response_class=Response,
    responses={
        200: {
            "description": "The export; `X-Content-SHA256` is the SHA-256 of these bytes.",
            "content": {JSON: {"schema": {"type": "object"}}, "text/html": {}},
        },
        503: {},
    },
)
async def export_my_data(
    caller: CurrentUser,
    rt: Runtime,
    request: Request,
    accept: Annotated[str, Header(max_length=1000, pattern=_HEADER_TEXT)] = "application/json",
) -> Any:
    """Everything held about you in every service, as one JSON file (or HTML for reading)."""
    fmt = "html" if "text/html" in accept else "json"
    try:
        done = await service.export(rt, caller.id, request.headers["authorization"], fmt)
    except ExportIncomplete as exc:
        raise ExportIncompleteProblem(
            f"Could not reach {', '.join(exc.missing)}; nothing was delivered. Retry later.",
            retry_after=10,
        ) from None
    headers = {
        "Content-Disposition": f'attachment; filename="expensura-export-{done.export_id}.{fmt}"',
        "X-Content-SHA256": done.sha256,
    }
    return Response(done.body, media_type=done.media_type, headers=headers)


@router.post("/v1/me/cancellation", status_code=202, responses={409: {}})
async def cancel_account(caller: CurrentUser, rt: Runtime) -> Cancellation:
    """Cancel the account. Nothing is erased during the cooling-off period: until then you
    can take it back. Afterwards every service stops processing, then erases (RUL-2)."""
    try:
        return Cancellation.of(await service.cancel_account(rt, caller.id))
    except CancellationAlreadyOpen as exc:
        raise CancellationExists(f"Request {exc.request_id} is already open.") from None


@router.get("/v1/me/cancellation", responses={404: {}})
async def my_cancellation(caller: CurrentUser, rt: Runtime) -> Cancellation:
    try:
        return Cancellation.of(await service.my_cancellation(rt, caller.id))
    except NoCancellation:
        raise NoCancellationProblem("You have not asked to cancel your account.") from None


@router.delete("/v1/me/cancellation", responses={404: {}, 409: {}})
async def withdraw_cancellation(caller: CurrentUser, rt: Runtime) -> Cancellation:
    """Take the cancellation back, while the cooling-off period lasts."""
    try:
        return Cancellation.of(await service.withdraw(rt, caller.id))
    except NoCancellation:
        raise NoCancellationProblem("You have not asked to cancel your account.") from None
    except CannotWithdraw as exc:
        raise CannotWithdrawProblem(str(exc)) from None


@router.get("/v1/erasure-certificates/{request_id}", responses={404: {}})
async def erasure_certificate(request_id: UUID, rt: Runtime) -> ErasureCertificate:
    """The proof of erasure: which stores confirmed, and that the subject's key is gone;
    what a store keeps under a legal retention hold, "held until" its end, then "erased".
    Addressed by the unguessable request id; it holds no personal data."""
    try:
        cert = await service.certificate(rt, request_id)
    except CertificateNotIssued:
        raise CertificateNotFound("Not issued (yet): every store must confirm first.") from None
    return ErasureCertificate(
        request_id=cert.request_id,
        subject_id=cert.subject_id,
        issued_at=cert.issued_at,
        services=cert.services,
        key_destroyed=True,
        certificate_event_id=cert.event_id,
        retention=[
            HeldRecordsOut(
                service=h.service,
                hold=h.hold,
                records=h.records,
                status=h.status,
                held_until=h.held_until,
                erased_at=h.erased_at,
            )
            for h in cert.retention
        ],
    )
