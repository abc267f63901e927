"""The sandbox messaging providers as a real server process (uvicorn, as the stacks start
them), driven over HTTP in each provider's protocol: their keys, their deterministic
failures (always, and once then delivered), a letter's idempotency key, an outage, and what
a test reads back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from expensura_ops.sandboxes import MESSAGING_APP
from expensura_ops.testing.sandbox import sandbox_server

pytestmark = pytest.mark.obligation("USE-10")

PUSH_KEY = "push-" + uuid.uuid4().hex[:8]
SID = "AC" + uuid.uuid4().hex
TOKEN = "token-" + uuid.uuid4().hex[:8]
LETTER_KEY = "test_" + uuid.uuid4().hex[:8]
ADDRESS = {
    "name": "Ann Lee",
    "address_line1": "12 Elm Street",
    "address_city": "Springfield",
    "address_state": "IL",
    "address_zip": "62704",
}
RETURN = ADDRESS | {"name": "Expensura", "address_line1": "100 Market Street"}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("messaging") / "messaging.log"
    env = {
        "EXPENSURA_PUSH_SANDBOX_KEY": PUSH_KEY,
        "EXPENSURA_SMS_SANDBOX_ACCOUNT_SID": SID,
        "EXPENSURA_SMS_SANDBOX_AUTH_TOKEN": TOKEN,
        "EXPENSURA_LETTER_SANDBOX_KEY": LETTER_KEY,
    }
    with sandbox_server(MESSAGING_APP, log, env) as base:
        yield base


@pytest.fixture(scope="module")
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=5) as client:
        yield client


def push(http: httpx.Client, token: str, key: str = PUSH_KEY) -> httpx.Response:
    return http.post(
        "/v1/projects/expensura/messages:send",
        json={"message": {"token": token, "notification": {"title": "T", "body": "B"}}},
        headers={"Authorization": f"Bearer {key}"},
    )


def sms(http: httpx.Client, to: str, token: str = TOKEN) -> httpx.Response:
    return http.post(
        f"/2010-04-01/Accounts/{SID}/Messages.json",
        data={"To": to, "From": "+15005550006", "Body": "Your payment is due."},
        auth=(SID, token),
    )


def letter(
    http: httpx.Client, line1: str, key: str = LETTER_KEY, idempotency: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {
        "to": ADDRESS | {"address_line1": line1},
        "from": RETURN,
        "file": "<html>Notice</html>",
        "use_type": "operational",
    }
    headers = {"Idempotency-Key": idempotency} if idempotency else {}
    return http.post("/v1/letters", json=body, auth=(key, ""), headers=headers)


def deliveries(http: httpx.Client, channel: str, to: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = http.get(
        "/sandbox/deliveries", params={"channel": channel, "to": to}
    ).json()["deliveries"]
    return found


def test_each_provider_refuses_a_wrong_key_in_its_own_shape(http: httpx.Client) -> None:
    refused = push(http, "tok-1", key="wrong")
    assert refused.status_code == 401 and refused.json()["error"]["status"] == "UNAUTHENTICATED"
    refused = sms(http, "+14155550100", token="wrong")
    assert refused.status_code == 401 and refused.json()["code"] == 20003
    refused = letter(http, "1 Main Street", key="wrong")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert http.get("/sandbox/deliveries").json()["deliveries"] == []


def test_a_push_is_delivered_and_readable_back(http: httpx.Client) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    sent = push(http, token)
    assert sent.status_code == 200
    assert sent.json()["name"].startswith("projects/expensura/messages/")
    [delivered] = deliveries(http, "push", token)
    assert (delivered["title"], delivered["body"]) == ("T", "B")


def test_an_unregistered_push_token_always_fails_and_a_flaky_one_fails_once(
    http: httpx.Client,
) -> None:
    gone = f"unregistered-{uuid.uuid4().hex}"
    for _ in range(2):
        answer = push(http, gone)
        assert answer.status_code == 404
        assert answer.json()["error"]["details"][0]["errorCode"] == "UNREGISTERED"
    flaky = f"flaky-{uuid.uuid4().hex}"
    assert push(http, flaky).status_code == 503
    assert push(http, flaky).status_code == 200
    assert len(deliveries(http, "push", flaky)) == 1 and deliveries(http, "push", gone) == []


def test_an_sms_is_queued_and_the_magic_numbers_fail_as_documented(http: httpx.Client) -> None:
    sent = sms(http, "+14155550123")
    assert sent.status_code == 201
    assert sent.json()["sid"].startswith("SM") and sent.json()["status"] == "queued"
    assert [d["body"] for d in deliveries(http, "sms", "+14155550123")] == ["Your payment is due."]
    assert sms(http, "+14155550001").json()["code"] == 21211
    assert sms(http, "+14155550009").json()["code"] == 21614
    once = f"+1415{uuid.uuid4().int % 1000:03d}0008"  # fails the first time only
    first = sms(http, once)
    assert first.status_code == 503 and first.json()["code"] == 20503
    assert sms(http, once).status_code == 201


def test_a_letter_is_printed_once_per_idempotency_key(http: httpx.Client) -> None:
    key = f"notice-{uuid.uuid4()}"
    line1 = f"{uuid.uuid4().int % 900 + 100} Oak Avenue"
    first = letter(http, line1, idempotency=key)
    again = letter(http, line1, idempotency=key)
    assert first.status_code == 200 and first.json()["id"].startswith("ltr_")
    assert again.json()["id"] == first.json()["id"]
    assert len(deliveries(http, "letter", line1)) == 1


def test_an_undeliverable_address_always_fails_and_a_retry_address_fails_once(
    http: httpx.Client,
) -> None:
    refused = letter(http, "1 UNDELIVERABLE Road")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "failed_deliverability_strictness"
    line1 = f"{uuid.uuid4().int % 900 + 100} RETRY Lane"
    assert letter(http, line1).status_code == 503
    assert letter(http, line1).status_code == 200


def test_an_outage_fails_one_channel_until_it_is_over(http: httpx.Client) -> None:
    assert http.put("/sandbox/outage", json={"channel": "sms", "down": True}).status_code == 200
    try:
        assert sms(http, "+14155550177").status_code == 503
        assert push(http, f"tok-{uuid.uuid4().hex}").status_code == 200
    finally:
        http.put("/sandbox/outage", json={"channel": "sms", "down": False})
    assert sms(http, "+14155550177").status_code == 201
    statuses = [
        a["status"]
        for a in http.get("/sandbox/attempts", params={"to": "+14155550177"}).json()["attempts"]
    ]
    assert statuses == [503, 201]
