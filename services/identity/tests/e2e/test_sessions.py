"""Sign-in, tokens, rotation and throttling, through identity's HTTP API."""

from __future__ import annotations

import uuid

import httpx
import pytest

from expensura_events.auth import InvalidToken, TokenVerifier
from expensura_events.vocabulary import ActorKind
from expensura_ops.testing import tokens as tokens_
from expensura_ops.testing.stack import LocalStack

PASSWORD = "correct horse battery staple"


def _signup(client: httpx.Client) -> str:
    email = f"s-{uuid.uuid4().hex[:10]}@example.com"
    resp = client.post("/v1/accounts", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 202, resp.text
    return email


@pytest.fixture
def idp(stack: LocalStack) -> httpx.Client:
    return httpx.Client(base_url=stack.processes["identity"].url, timeout=10)


@pytest.mark.obligation("SEC-2")
async def test_sign_in_gives_a_token_any_service_verifies_through_the_jwks(
    stack: LocalStack, idp: httpx.Client
) -> None:
    email = _signup(idp)
    async with httpx.AsyncClient(base_url=str(idp.base_url)) as client:
        resp = await client.post(
            "/v1/sessions", json={"email": email.upper(), "password": PASSWORD}
        )
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 600
    verifier = TokenVerifier(f"{stack.processes['identity'].url}/.well-known/jwks.json")
    caller = await verifier.verify(tokens["access_token"])
    assert (caller.kind, caller.mfa) == (ActorKind.USER, False)
    assert caller.id == tokens_.subject_of(tokens["access_token"])  # the account signed up
    with pytest.raises(InvalidToken):
        await verifier.verify(tokens["access_token"][:-4] + "AAAA")


@pytest.mark.obligation("SEC-2")
def test_a_reused_refresh_token_revokes_the_whole_session(idp: httpx.Client) -> None:
    email = _signup(idp)
    first = idp.post("/v1/sessions", json={"email": email, "password": PASSWORD}).json()
    second = idp.post("/v1/sessions/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]

    replay = idp.post("/v1/sessions/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.headers["content-type"] == "application/problem+json"
    assert "already used" in replay.json()["detail"]
    # the legitimate holder's newer token died with the family
    after = idp.post("/v1/sessions/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert after.status_code == 401


@pytest.mark.obligation("SEC-2")
def test_failed_sign_ins_are_throttled_then_refused_with_retry_after(idp: httpx.Client) -> None:
    email = _signup(idp)
    for _ in range(5):
        wrong = idp.post("/v1/sessions", json={"email": email, "password": "wrong password"})
        assert wrong.status_code == 401
    throttled = idp.post("/v1/sessions", json={"email": email, "password": PASSWORD})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0


def test_unknown_account_and_wrong_password_look_the_same(idp: httpx.Client) -> None:
    email = _signup(idp)
    a = idp.post("/v1/sessions", json={"email": email, "password": "nope nope"})
    b = idp.post("/v1/sessions", json={"email": "nobody@example.com", "password": "nope"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


def test_sign_out_needs_a_token_and_revokes_the_refresh_token(idp: httpx.Client) -> None:
    assert idp.delete("/v1/sessions/current").status_code == 401
    email = _signup(idp)
    tokens = idp.post("/v1/sessions", json={"email": email, "password": PASSWORD}).json()
    out = idp.delete(
        "/v1/sessions/current", headers={"authorization": f"Bearer {tokens['access_token']}"}
    )
    assert out.status_code == 204
    refused = idp.post("/v1/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refused.status_code == 401
