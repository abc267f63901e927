"""The gateway's own piece of the HTTP edge, shared by the views of several features: the
calling partner (as the library's `web.auth` gives the calling user or staff member).

It is not a feature's `views` (those are imported by app.py alone), so disclosures' routes
can depend on it; the rules behind it are `partner_auth.service`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from expensura_events.web.auth import Runtime
from expensura_events.web.problems import Problem
from expensura_sharing_gateway.partner_auth import service
from expensura_sharing_gateway.partner_auth.domain import (
    InvalidClient,
    Partner,
    Replayed,
    StaleRequest,
)


class InvalidClientProblem(Problem):
    status, title = 401, "Invalid client"


class ReplayedProblem(Problem):
    status, title = 409, "Replayed request"


class StaleRequestProblem(Problem):
    status, title = 401, "Request timestamp outside the allowed window"


async def partner(
    request: Request,
    rt: Runtime,
    x_request_nonce: Annotated[
        str, Header(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    ],
    x_request_timestamp: Annotated[int, Header(ge=0, le=2**40)],
) -> Partner:
    """The calling partner: a valid gateway token, a fresh timestamp, an unused nonce."""
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw:
        raise InvalidClientProblem("Send a gateway access token (POST /oauth/token).")
    try:
        return await service.authenticate(rt, raw, x_request_nonce, x_request_timestamp)
    except InvalidClient as exc:
        raise InvalidClientProblem(str(exc)) from None
    except StaleRequest as exc:
        raise StaleRequestProblem(str(exc)) from None
    except Replayed as exc:
        raise ReplayedProblem(str(exc)) from None


CurrentPartner = Annotated[Partner, Depends(partner)]
