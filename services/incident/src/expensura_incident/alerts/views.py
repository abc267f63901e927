"""Incidents raised automatically, over incident's internal listener: `expensura log verify`
reports a broken or rewritten log (SEC-4).

Only a service may call it (its service token), and only about its own log: the command line
verifies a service's chain with that service's configuration, so the token it sends is that
service's. A caller without a token is 401, a token for another service's log 403; neither
changes anything. Risk signals and forged records need no route: they come from the logs
(`projection.py`)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from expensura_events.topology import ServiceName
from expensura_events.web.auth import EVERY_SERVICE, Runtime, callers
from expensura_events.web.problems import Forbidden, Problem
from expensura_incident.alerts import service
from expensura_incident.alerts.domain import NothingBroken

router = APIRouter(prefix="/internal/broken-logs", tags=["internal"])


class BrokenLog(BaseModel):
    """What `log verify` found on one service's log: the first broken link of its chain,
    and/or that its checkpoints contradict what its peers witnessed."""

    service: ServiceName
    first_broken: Annotated[int, Field(ge=1, le=2**62)] | None = None
    rewritten: bool = False


class Raised(BaseModel):
    incident_id: UUID
    # raised: a new incident; attached: a new finding on the open one; already-seen: this
    # finding was reported before (log verify run again).
    outcome: service.Outcome


class NoFinding(Problem):
    status, title = 422, "Nothing broken"


@router.post("", status_code=201, responses={200: {"model": Raised}, 403: {}, 422: {}})
async def report_broken_log(
    body: BrokenLog,
    rt: Runtime,
    response: Response,
    caller: Annotated[str, callers(*EVERY_SERVICE)],
) -> Raised:
    if caller != body.service.value:
        raise Forbidden(f"{caller} may report only its own log, not {body.service.value}'s.")
    try:
        handled = await service.report_broken_log(
            rt,
            service=body.service.value,
            first_broken=body.first_broken,
            rewritten=body.rewritten,
        )
    except NothingBroken as exc:
        raise NoFinding(str(exc)) from None
    if handled.outcome is not service.Outcome.RAISED:
        response.status_code = 200
    return Raised(incident_id=handled.incident_id, outcome=handled.outcome)
