"""Sandbox messaging providers (push, SMS, letter) over HTTP, for `make run` and the tests.
They are external parties' systems, so they keep their state in memory. One process serves
the three, each at the paths and in the shape of the provider it stands for, so a client
written against it talks to the real one by changing its base URL and credentials:

- push, after Firebase Cloud Messaging's HTTP v1 API:
  `POST /v1/projects/{project_id}/messages:send` {message: {token, notification: {title,
  body}, data}} with `Authorization: Bearer <key>` → 200 {name:
  "projects/{project_id}/messages/{id}"}. Errors in Google's shape {error: {code, message,
  status, details: [{"@type": "…FcmError", errorCode}]}}.
- SMS, after Twilio's Messages resource:
  `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded To, From, Body, HTTP
  Basic `AccountSid:AuthToken` → 201 {sid: "SM…", status: "queued", to, from, body, …}.
  Errors {code, message, more_info, status} with Twilio's error codes.
- letters, after Lob's print-and-mail API:
  `POST /v1/letters` (JSON) {description, to: {name, address_line1, address_line2,
  address_city, address_state, address_zip, address_country}, from: {…}, file, color,
  use_type}, HTTP Basic with the API key as user name, optional `Idempotency-Key` (the same
  key again returns the first letter, nothing is printed twice) → 200 {id: "ltr_…",
  object: "letter", expected_delivery_date, …}. Errors {error: {message, status_code,
  code}}.

Credentials (read once, at start; sandbox values, published here on purpose):
`EXPENSURA_PUSH_SANDBOX_KEY` (default `sandbox-push-key`), `EXPENSURA_SMS_SANDBOX_ACCOUNT_SID`
and `EXPENSURA_SMS_SANDBOX_AUTH_TOKEN` (defaults `AC` + 32 zeros, `sandbox-sms-token`),
`EXPENSURA_LETTER_SANDBOX_KEY` (default `test_sandbox_letter_key`). A missing or wrong one →
401 in the provider's shape.

Deterministic outcomes, chosen by the recipient:

- push, a token starting `unregistered-` → 404 NOT_FOUND, errorCode UNREGISTERED (always);
- push, a token starting `flaky-` → 503 UNAVAILABLE the first time, then delivered;
- SMS, To ending in `0001` → 400, code 21211 (not a valid phone number; always);
- SMS, To ending in `0009` → 400, code 21614 (not a mobile number; always);
- SMS, To ending in `0008` → 503, code 20503 the first time, then delivered;
- letter, address_line1 containing UNDELIVERABLE → 422 failed_deliverability_strictness
  (always);
- letter, address_line1 containing RETRY → 503 service_unavailable the first time, then
  printed;
- any, while `PUT /sandbox/outage` {channel, down: true} → 503 until set back.

Anything else is delivered. "The first time" is per recipient, for the process's life.

Test controls (no auth; not part of any provider's protocol):
- `GET /sandbox/deliveries?channel=push|sms|letter&to=…` → {deliveries: [...]} oldest
  first: what each provider accepted (`to` is the token, the number, or address_line1);
- `GET /sandbox/attempts?channel=…&to=…` → every request, accepted or refused, with its status;
- `PUT /sandbox/outage` {channel, down};
- `GET /sandbox/state` → counts (readiness probe).

What a sandbox keeps is what the real provider would: the recipients and the texts. It is
local-development data; the process logs nothing of a message (run it `--no-access-log`).
"""

from __future__ import annotations

import base64
import hmac
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import FastAPI, Form, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PUSH_KEY = os.environ.get("EXPENSURA_PUSH_SANDBOX_KEY") or "sandbox-push-key"
SMS_ACCOUNT_SID = os.environ.get("EXPENSURA_SMS_SANDBOX_ACCOUNT_SID") or "AC" + "0" * 32
SMS_AUTH_TOKEN = os.environ.get("EXPENSURA_SMS_SANDBOX_AUTH_TOKEN") or "sandbox-sms-token"
LETTER_KEY = os.environ.get("EXPENSURA_LETTER_SANDBOX_KEY") or "test_sandbox_letter_key"

app = FastAPI(title="Sandbox messaging providers", version="1.0.0")


class Channel(StrEnum):
    PUSH = "push"
    SMS = "sms"
    LETTER = "letter"


class _State:
    def __init__(self) -> None:
        self.down: set[Channel] = set()
        self.deliveries: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.failed_once: set[tuple[Channel, str]] = set()
        self.letters_by_key: dict[str, dict[str, Any]] = {}


_state = _State()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _attempt(channel: Channel, to: str, status: int) -> None:
    _state.attempts.append({"channel": channel.value, "to": to, "status": status, "at": _now()})


def _fails_first_time(channel: Channel, to: str) -> bool:
    """True the first time this recipient is sent to (the flaky patterns), False after."""
    if (channel, to) in _state.failed_once:
        return False
    _state.failed_once.add((channel, to))
    return True


def _basic(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@app.exception_handler(RequestValidationError)
async def _on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = "; ".join(str(e.get("msg", "")) for e in exc.errors())[:500]
    path = request.url.path
    if path.startswith("/2010-04-01/"):
        return _twilio_error(400, 21602, f"Invalid request: {detail}")
    if path.startswith("/v1/letters"):
        return _lob_error(422, "invalid", detail)
    return _fcm_error(400, "INVALID_ARGUMENT", detail)


# --- push: Firebase Cloud Messaging HTTP v1 ---------------------------------------------


class PushNotification(BaseModel):
    title: str = Field(default="", max_length=1000)
    body: str = Field(default="", max_length=4000)


class PushMessage(BaseModel):
    token: str = Field(min_length=1, max_length=4096)
    notification: PushNotification | None = None
    data: dict[str, str] = Field(default_factory=dict)


class PushSend(BaseModel):
    validate_only: bool = False
    message: PushMessage


_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_UNAVAILABLE = "The service is currently unavailable."


def _fcm_error(status: int, code: str, message: str, error_code: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if error_code is not None:
        error["details"] = [{"@type": _FCM_ERROR_TYPE, "errorCode": error_code}]
    return JSONResponse({"error": error}, status_code=status)


@app.post("/v1/projects/{project_id}/messages:send", response_model=None)
async def push_send(
    project_id: str,
    body: PushSend,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any] | JSONResponse:
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not _same(key, PUSH_KEY):
        return _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    token = body.message.token
    if Channel.PUSH in _state.down:
        _attempt(Channel.PUSH, token, 503)
        return _fcm_error(503, "UNAVAILABLE", _UNAVAILABLE, "UNAVAILABLE")
    if token.startswith("unregistered-"):
        _attempt(Channel.PUSH, token, 404)
        return _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
    if token.startswith("flaky-") and _fails_first_time(Channel.PUSH, token):
        _attempt(Channel.PUSH, token, 503)
        return _fcm_error(503, "UNAVAILABLE", _UNAVAILABLE, "UNAVAILABLE")
    name = f"projects/{project_id}/messages/0:{uuid.uuid4().int % 10**16}"
    _attempt(Channel.PUSH, token, 200)
    if not body.validate_only:
        notification = body.message.notification or PushNotification()
        _state.deliveries.append(
            {
                "channel": Channel.PUSH.value,
                "id": name,
                "to": token,
                "title": notification.title,
                "body": notification.body,
                "data": body.message.data,
                "at": _now(),
            }
        )
    return {"name": name}


# --- SMS: Twilio's Messages resource ----------------------------------------------------


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


@app.post("/2010-04-01/Accounts/{account_sid}/Messages.json", response_model=None)
async def sms_send(
    account_sid: str,
    to: Annotated[str, Form(alias="To", min_length=1, max_length=32)],
    body: Annotated[str, Form(alias="Body", min_length=1, max_length=1600)],
    from_: Annotated[str | None, Form(alias="From", max_length=32)] = None,
    messaging_service_sid: Annotated[str | None, Form(alias="MessagingServiceSid")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    credentials = _basic(authorization)
    if (
        credentials is None
        or not _same(credentials[0], SMS_ACCOUNT_SID)
        or not _same(credentials[1], SMS_AUTH_TOKEN)
        or account_sid != SMS_ACCOUNT_SID
    ):
        return _twilio_error(401, 20003, "Authenticate")
    if from_ is None and messaging_service_sid is None:
        return _twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
    if Channel.SMS in _state.down:
        _attempt(Channel.SMS, to, 503)
        return _twilio_error(503, 20503, "Service unavailable")
    if not to.startswith("+") or not to[1:].isdigit():
        _attempt(Channel.SMS, to, 400)
        return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if to.endswith("0001"):
        _attempt(Channel.SMS, to, 400)
        return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if to.endswith("0009"):
        _attempt(Channel.SMS, to, 400)
        return _twilio_error(400, 21614, f"'To' number {to} is not a mobile number")
    if to.endswith("0008") and _fails_first_time(Channel.SMS, to):
        _attempt(Channel.SMS, to, 503)
        return _twilio_error(503, 20503, "Service unavailable")
    sid = "SM" + uuid.uuid4().hex
    created = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    message = {
        "sid": sid,
        "account_sid": account_sid,
        "to": to,
        "from": from_,
        "messaging_service_sid": messaging_service_sid,
        "body": body,
        "status": "queued",
        "num_segments": str(-(-len(body) // 153) if len(body) > 160 else 1),
        "direction": "outbound-api",
        "date_created": created,
        "date_updated": created,
        "error_code": None,
        "error_message": None,
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }
    _attempt(Channel.SMS, to, 201)
    _state.deliveries.append(
        {"channel": Channel.SMS.value, "id": sid, "to": to, "body": body, "at": _now()}
    )
    return JSONResponse(message, status_code=201)


# --- letters: Lob's print-and-mail API --------------------------------------------------


class LobAddress(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    address_line1: str = Field(min_length=1, max_length=64)
    address_line2: str | None = Field(default=None, max_length=64)
    address_city: str = Field(min_length=1, max_length=200)
    address_state: str = Field(min_length=2, max_length=2)
    address_zip: str = Field(pattern=r"^\d{5}(-\d{4})?$")
    address_country: str = Field(default="US", max_length=2)


class LetterRequest(BaseModel):
    description: str | None = Field(default=None, max_length=255)
    to: LobAddress
    from_: LobAddress = Field(alias="from")
    file: str = Field(min_length=1, max_length=100_000)
    color: bool = False
    use_type: str = Field(pattern="^(operational|marketing)$")
    metadata: dict[str, str] = Field(default_factory=dict)


def _lob_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "status_code": status, "code": code}}, status_code=status
    )


@app.post("/v1/letters", response_model=None)
async def letter_send(
    body: LetterRequest,
    authorization: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=256)] = None,
) -> dict[str, Any] | JSONResponse:
    credentials = _basic(authorization)
    if credentials is None or not _same(credentials[0], LETTER_KEY):
        return _lob_error(401, "unauthorized", "Your API key is not valid.")
    if idempotency_key is not None and idempotency_key in _state.letters_by_key:
        return _state.letters_by_key[idempotency_key]
    line1 = body.to.address_line1
    if Channel.LETTER in _state.down:
        _attempt(Channel.LETTER, line1, 503)
        return _lob_error(503, "service_unavailable", "Service unavailable, retry later.")
    if "UNDELIVERABLE" in line1.upper():
        _attempt(Channel.LETTER, line1, 422)
        return _lob_error(
            422, "failed_deliverability_strictness", "address is undeliverable (strictness)"
        )
    if "RETRY" in line1.upper() and _fails_first_time(Channel.LETTER, line1):
        _attempt(Channel.LETTER, line1, 503)
        return _lob_error(503, "service_unavailable", "Service unavailable, retry later.")
    letter_id = "ltr_" + uuid.uuid4().hex[:20]
    letter = {
        "id": letter_id,
        "object": "letter",
        "description": body.description,
        "to": body.to.model_dump(),
        "from": body.from_.model_dump(),
        "color": body.color,
        "use_type": body.use_type,
        "metadata": body.metadata,
        "mail_type": "usps_first_class",
        "expected_delivery_date": (date.today() + timedelta(days=5)).isoformat(),
        "date_created": _now(),
    }
    _attempt(Channel.LETTER, line1, 200)
    _state.deliveries.append(
        {
            "channel": Channel.LETTER.value,
            "id": letter_id,
            "to": line1,
            "address": body.to.model_dump(),
            "body": body.file,
            "description": body.description,
            "at": _now(),
        }
    )
    if idempotency_key is not None:
        _state.letters_by_key[idempotency_key] = letter
    return letter


# --- test controls ----------------------------------------------------------------------


class Outage(BaseModel):
    channel: Channel
    down: bool


def _matching(items: list[dict[str, Any]], channel: Channel | None, to: str | None) -> list[Any]:
    return [
        dict(i)
        for i in items
        if (channel is None or i["channel"] == channel.value) and (to is None or i["to"] == to)
    ]


@app.get("/sandbox/deliveries")
async def deliveries(channel: Channel | None = None, to: str | None = None) -> dict[str, Any]:
    return {"deliveries": _matching(_state.deliveries, channel, to)}


@app.get("/sandbox/attempts")
async def attempts(channel: Channel | None = None, to: str | None = None) -> dict[str, Any]:
    return {"attempts": _matching(_state.attempts, channel, to)}


@app.put("/sandbox/outage")
async def outage(body: Outage) -> dict[str, Any]:
    if body.down:
        _state.down.add(body.channel)
    else:
        _state.down.discard(body.channel)
    return {"down": sorted(c.value for c in _state.down)}


@app.get("/sandbox/state")
async def state() -> dict[str, Any]:
    return {
        "down": sorted(c.value for c in _state.down),
        "deliveries": len(_state.deliveries),
        "attempts": len(_state.attempts),
    }
