"""Data-subject rights over HTTP: access (export) and account cancellation."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import httpx
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select, update

from expensura_events.catalog.rights import (
    AccountCancellationWithdrawn,
    DataExportDelivered,
    DataExportRequested,
)
from expensura_events.envelope import Actor, utcnow
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.rights.cancellation import (
    RIGHTS_BASIS,
    CancellationAlreadyOpen,
    open_cancellation,
)
from expensura_identity.rights.domain import (
    ERASURE_PARTICIPANTS,
    CancellationState,
    can_withdraw,
)
from expensura_identity.rights.tables import cancellation_requests, erasure_certificates

router = APIRouter(tags=["rights"])
JSON = "application/json"
_HEADER_TEXT = r"^[\x20-\x7e]*$"  # what an Accept header may carry: printable ASCII


class ExportIncomplete(Problem):
    status, title = 503, "Export incomplete"


class NoCancellation(Problem):
    status, title = 404, "No open cancellation"


class CancellationExists(Problem):
    status, title = 409, "Cancellation already requested"


class CannotWithdraw(Problem):
    status, title = 409, "Cancellation can no longer be withdrawn"


class CertificateNotFound(Problem):
    status, title = 404, "No such erasure certificate"


class Cancellation(BaseModel):
    request_id: UUID
    state: str
    requested_at: datetime
    cooling_off_until: datetime


class ErasureCertificate(BaseModel):
    request_id: UUID
    subject_id: str
    issued_at: datetime
    services: list[str]
    key_destroyed: bool
    certificate_event_id: UUID


def _user(caller_id: str) -> Actor:
    return Actor(kind=ActorKind.USER, id=caller_id)


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
    export_id = uuid4()
    fmt = "html" if "text/html" in accept else "json"
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    DataExportRequested(export_id=export_id, format=fmt),
                    stream_id=f"export-{export_id}",
                    subject_id=caller.id,
                    actor=_user(caller.id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=RIGHTS_BASIS,
                )
            ],
        )
    token = request.headers["authorization"]
    # Each service answers for itself with the user's own token: identity never reads
    # another service's tables, and each read is recorded where it happens.
    async with httpx.AsyncClient(timeout=20) as client:
        replies = await asyncio.gather(
            *(
                client.get(
                    f"{rt.settings.service_urls[name].rstrip('/')}/v1/me/data",
                    headers={"authorization": token},
                )
                for name in ERASURE_PARTICIPANTS
            ),
            return_exceptions=True,
        )
    parts: dict[str, Any] = {}
    failed = []
    for name, reply in zip(ERASURE_PARTICIPANTS, replies, strict=True):
        if isinstance(reply, httpx.Response) and reply.status_code == 200:
            parts[name] = reply.json()
        else:
            failed.append(name)
    if failed:
        raise ExportIncomplete(
            f"Could not reach {', '.join(failed)}; nothing was delivered. Retry later.",
            retry_after=10,
        )
    document = {
        "export_id": str(export_id),
        "subject_id": caller.id,
        "generated_at": utcnow().isoformat(),
        "format": "expensura-subject-export/1",
        "services": parts,
    }
    # Serialised once: the digest recorded and sent is of exactly the bytes delivered, so
    # the user can check the file they received.
    if fmt == "html":
        body, media_type = render_html(document).encode(), "text/html; charset=utf-8"
    else:
        body, media_type = json.dumps(document, indent=2, sort_keys=True).encode(), JSON
    digest = hashlib.sha256(body).hexdigest()
    async with rt.engine.begin() as conn:
        await rt.append(
            conn,
            [
                rt.envelope(
                    DataExportDelivered(export_id=export_id, services=sorted(parts), sha256=digest),
                    stream_id=f"export-{export_id}",
                    subject_id=caller.id,
                    actor=_user(caller.id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=RIGHTS_BASIS,
                )
            ],
        )
    headers = {
        "Content-Disposition": f'attachment; filename="expensura-export-{export_id}.{fmt}"',
        "X-Content-SHA256": digest,
    }
    return Response(body, media_type=media_type, headers=headers)


def render_html(document: dict[str, Any]) -> str:
    """A plain page a person can read; the JSON file stays the machine-readable original."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Your Expensura data</title>",
        "</head><body><h1>Everything Expensura holds about you</h1>",
        f"<p>Export {html.escape(document['export_id'])}, generated "
        f"{html.escape(document['generated_at'])}.</p>",
    ]
    for service, part in document["services"].items():
        out.append(f"<h2>{html.escape(service)}</h2><table border='1'>")
        out.append("<tr><th>when</th><th>what</th><th>why</th><th>details</th></tr>")
        for event in part["events"]:
            out.append(
                "<tr>"
                f"<td>{html.escape(str(event['occurred_at']))}</td>"
                f"<td>{html.escape(event['event_type'])}</td>"
                f"<td>{html.escape(event['purpose'])}</td>"
                f"<td><code>{html.escape(json.dumps(event['payload']))}</code></td>"
                "</tr>"
            )
        out.append("</table>")
        for projection, tables in part["read_models"].items():
            out.append(f"<h3>{html.escape(projection)}</h3>")
            out.append(f"<pre>{html.escape(json.dumps(tables, indent=2))}</pre>")
    out.append("</body></html>")
    return "".join(out)


@router.post("/v1/me/cancellation", status_code=202, responses={409: {}})
async def cancel_account(caller: CurrentUser, rt: Runtime) -> Cancellation:
    """Cancel the account. Nothing is erased during the cooling-off period: until then you
    can take it back. Afterwards every service stops processing, then erases (RUL-2)."""
    async with rt.engine.begin() as conn:
        try:
            opened = await open_cancellation(
                rt, conn, caller.id, reason="user-request", actor=_user(caller.id)
            )
        except CancellationAlreadyOpen as exc:
            raise CancellationExists(f"Request {exc.request_id} is already open.") from None
    return Cancellation(
        request_id=opened.request_id,
        state=CancellationState.COOLING_OFF.value,
        requested_at=opened.requested_at,
        cooling_off_until=opened.cooling_off_until,
    )


async def _open_request(rt: Runtime, subject: str) -> Any:
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(cancellation_requests)
                .where(cancellation_requests.c.subject_id == subject)
                .order_by(cancellation_requests.c.requested_at.desc())
                .limit(1)
            )
        ).first()
    if row is None:
        raise NoCancellation("You have not asked to cancel your account.")
    return row


@router.get("/v1/me/cancellation", responses={404: {}})
async def my_cancellation(caller: CurrentUser, rt: Runtime) -> Cancellation:
    row = await _open_request(rt, caller.id)
    return Cancellation(
        request_id=row.request_id,
        state=row.state,
        requested_at=row.requested_at,
        cooling_off_until=row.cooling_off_until,
    )


@router.delete("/v1/me/cancellation", responses={404: {}, 409: {}})
async def withdraw_cancellation(caller: CurrentUser, rt: Runtime) -> Cancellation:
    """Take the cancellation back, while the cooling-off period lasts."""
    row = await _open_request(rt, caller.id)
    if not can_withdraw(CancellationState(row.state)):
        raise CannotWithdraw(f"The request is {row.state}.")
    async with rt.engine.begin() as conn:
        changed = await conn.execute(
            update(cancellation_requests)
            .where(
                cancellation_requests.c.request_id == row.request_id,
                cancellation_requests.c.state == CancellationState.COOLING_OFF.value,
            )
            .values(state=CancellationState.WITHDRAWN.value)
        )
        if changed.rowcount != 1:
            raise CannotWithdraw("The cooling-off period has just ended.")
        await rt.append(
            conn,
            [
                rt.envelope(
                    AccountCancellationWithdrawn(request_id=row.request_id),
                    stream_id=f"cancellation-{row.request_id}",
                    subject_id=caller.id,
                    actor=_user(caller.id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=RIGHTS_BASIS,
                )
            ],
        )
    return Cancellation(
        request_id=row.request_id,
        state=CancellationState.WITHDRAWN.value,
        requested_at=row.requested_at,
        cooling_off_until=row.cooling_off_until,
    )


@router.get("/v1/erasure-certificates/{request_id}", responses={404: {}})
async def erasure_certificate(request_id: UUID, rt: Runtime) -> ErasureCertificate:
    """The proof of erasure: which stores confirmed, and that the subject's key is gone.
    Addressed by the unguessable request id; it holds no personal data."""
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(erasure_certificates).where(erasure_certificates.c.request_id == request_id)
            )
        ).first()
    if row is None:
        raise CertificateNotFound("Not issued (yet): every store must confirm first.")
    return ErasureCertificate(
        request_id=row.request_id,
        subject_id=row.subject_id,
        issued_at=row.issued_at,
        services=row.services,
        key_destroyed=True,
        certificate_event_id=row.event_id,
    )
