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
    BadSignature,
    InvalidClient,
    Partner,
    Replayed,
    SignedRequest,
    StaleRequest,
)


class InvalidClientProblem(Problem):
    status, title = 401, "Invalid client"


class ReplayedProblem(Problem):
    status, title = 409, "Replayed request"


class StaleRequestProblem(Problem):
    status, title = 401, "Request timestamp outside the allowed window"


class BadSignatureProblem(Problem):
    status, title = 401, "Request signature refused"


async def partner(
    request: Request,
    rt: Runtime,
    # Declared for the OpenAPI document; checked by `verify_request`, which answers 401 for
    # a missing or malformed one (a 422 would tell a forger which part to fix).
    content_digest: Annotated[str | None, Header(max_length=200)] = None,
    signature_input: Annotated[str | None, Header(max_length=400)] = None,
    signature: Annotated[str | None, Header(max_length=200)] = None,
) -> Partner:
    """The calling partner: a valid gateway token, and a signature by its request key over
    this method, path, query and body, fresh, with an unused nonce."""
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw:
        raise InvalidClientProblem("Send a gateway access token (POST /oauth/token).")
    signed = SignedRequest(
        method=request.method,
        path=request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
        query=request.scope.get("query_string", b"").decode("latin-1"),
        body=await request.body(),  # FastAPI read it for the route already: cached
        content_digest=content_digest,
        signature_input=signature_input,
        signature=signature,
    )
    try:
        return await service.authenticate(rt, raw, signed)
    except InvalidClient as exc:
        raise InvalidClientProblem(str(exc)) from None
    except (BadSignature, StaleRequest) as exc:
        problem = BadSignatureProblem if isinstance(exc, BadSignature) else StaleRequestProblem
        raise problem(str(exc)) from None
    except Replayed as exc:
        raise ReplayedProblem(str(exc)) from None


CurrentPartner = Annotated[Partner, Depends(partner)]
