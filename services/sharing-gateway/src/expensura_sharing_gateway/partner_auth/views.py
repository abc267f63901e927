"""The token endpoint (OAuth2 client credentials) over HTTP. The check of every data
request's token and signature is `expensura_sharing_gateway.web.CurrentPartner`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from pydantic import BaseModel

from expensura_events.fields import Identifier, Secret
from expensura_events.web.auth import Runtime
from expensura_sharing_gateway.partner_auth import service
from expensura_sharing_gateway.partner_auth.domain import InvalidClient
from expensura_sharing_gateway.web import InvalidClientProblem

router = APIRouter(tags=["partner authentication"])
# RFC 6749 §3.3: space-separated scope tokens of printable ASCII except '"' and '\\'.
SCOPE = r"^[!#-\[\]-~ ]*$"


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str
    # The key the partner signs this token's data requests with (HMAC-SHA256, RFC 9421
    # style; docs/security.md). Issued with the token, like the MAC key of OAuth 2.0 MAC
    # tokens; never sent back.
    request_key: str


@router.post("/oauth/token", responses={401: {}})
async def token(
    rt: Runtime,
    grant_type: Annotated[str, Form(pattern="^client_credentials$")],
    client_id: Annotated[Identifier, Form(min_length=3, max_length=100)],
    client_secret: Annotated[Secret, Form(min_length=10)],
    scope: Annotated[str, Form(max_length=500, pattern=SCOPE)] = "",
) -> TokenResponse:
    """Client credentials grant: a short-lived token for the scopes (purposes) asked, within
    what the credential allows."""
    try:
        issued = await service.issue_token(rt, client_id, client_secret, scope)
    except InvalidClient as exc:
        raise InvalidClientProblem(str(exc)) from None
    return TokenResponse(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        scope=issued.scope,
        request_key=issued.request_key,
    )
