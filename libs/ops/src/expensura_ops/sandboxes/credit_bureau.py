"""A sandbox consumer credit bureau (JSON and Metro 2-style files over HTTP), for `make run`
and the tests. It is an external party's system, so it keeps its state in memory.

Run: `python -m uvicorn expensura_ops.sandboxes.credit_bureau:app --host 127.0.0.1 --port N`.
Configuration (read once, at start): `EXPENSURA_BUREAU_SUBSCRIBER_KEY`, the one subscriber
key `/v1/*` accepts as `Authorization: Bearer <key>`; default `sandbox-subscriber-key`
(a sandbox key, published here on purpose). Errors are `application/problem+json`.

Protocol (`/v1/*`, subscriber key required; 401 without it or with a wrong one; every
`/v1/*` request answers 503 while the bureau is down):
- `POST /v1/inquiries` {subscriber_id, permissible_purpose: credit-transaction |
  account-review | collection, consumer_reference, inquiry_id} → 200, the report. An unknown
  purpose → 422. Repeating an inquiry id returns the first report; the same inquiry id
  with a different consumer or purpose is not a retry → 409.
- `POST /v1/furnishing` (`text/plain`, the file below) → 200 {file_id, accepted,
  rejected: [{line, reason}]}. A bad header or trailer, or a trailer count that disagrees
  with the base records → 422 and nothing is kept. The same furnisher id and activity date
  again → 200, the first receipt (same file_id).
- `GET /v1/disputes?after=<dispute id or empty>` → {disputes: [...]} in the order received.
  Dispute ids sort in that order, so `after` is a cursor (an id never issued works too).
- `POST /v1/disputes/{id}/response` {outcome: verified-as-reported | modified | deleted,
  note} → 200; unknown id → 404; a different answer to an answered dispute → 409 (the same
  answer again is a retry → 200).

Deterministic reports, chosen by the consumer's profile (an unknown reference is `good`):

| profile | status  | score | credit                                                          |
|---------|---------|-------|-----------------------------------------------------------------|
| good    | ok      | 760   | 96 months, 4 open, $450/month, 18 % utilised, 0 delinq., 1 inq. |
| poor    | ok      | 560   | 40 months, 6 open, $2,850/month, 92 %, 3 delinq., 7 inq.        |
| thin    | no-file | null  | 3 months, 1 open, $50/month, 0 %, 0 delinq., 1 inq.             |
| frozen  | frozen  | null  | null (and `consumer` null)                                      |

Test controls (no auth; they are not part of the bureau's protocol):
- `PUT /sandbox/consumers/{consumer_reference}` {profile: good | poor | thin | frozen};
- `PUT /sandbox/outage` {down: bool};
- `POST /sandbox/disputes` {account_number, consumer_reference, reason} → 201, the dispute
  (as a consumer's dispute reaches the bureau);
- `GET /sandbox/disputes` → every dispute with the furnisher's response (or null);
- `GET /sandbox/furnished` → the files kept: ids, header fields, counts, base records;
- `GET /sandbox/state` → {down, inquiries, files, disputes} (readiness probe).

The furnishing file: records of exactly 426 characters (ASCII) separated by `\\n` (one
final `\\n` allowed): one header record, base records, one trailer record. Positions are
1-based and inclusive, as in the Metro 2 (426-character) format whose positions they keep.

Header record:

| positions | width | field                          | sandbox check                    |
|-----------|-------|--------------------------------|----------------------------------|
| 1-4       | 4     | record descriptor word         | "0426"                           |
| 5-10      | 6     | record identifier              | "HEADER"                         |
| 11-12     | 2     | cycle number                   | — (blank: reporting monthly)     |
| 13-22     | 10    | furnisher id (the program      | not blank (left-justified,       |
|           |       | identifier this bureau issued) | blank-filled)                    |
| 23-47     | 25    | other bureaus' program ids     | (blank)                          |
| 48-55     | 8     | activity date MMDDYYYY         | a real date                      |
| 56-63     | 8     | date created MMDDYYYY          | a real date                      |
| 64-71     | 8     | program date MMDDYYYY          | —                                |
| 72-79     | 8     | program revision date MMDDYYYY | —                                |
| 80-119    | 40    | reporter name                  | — (kept)                         |
| 120-215   | 96    | reporter address               | —                                |
| 216-225   | 10    | reporter telephone number      | —                                |
| 226-265   | 40    | software vendor name           | —                                |
| 266-270   | 5     | software version number        | —                                |
| 271-426   | 156   | reserved                       | (blank)                          |

Base record: 426 characters, "0426" in 1-4, processing indicator "1" in 5; a base record
that breaks this is listed in `rejected` (by its line number in the file, header = 1), and
the rest are accepted. The sandbox reads nothing else of a base record.

Trailer record:

| positions | width | field                         | sandbox check                     |
|-----------|-------|-------------------------------|-----------------------------------|
| 1-4       | 4     | record descriptor word        | "0426"                            |
| 5-11      | 7     | record identifier             | "TRAILER"                         |
| 12-20     | 9     | total base records            | digits, zero-filled; equal to the |
|           |       |                               | number of lines between header    |
|           |       |                               | and trailer (rejected ones count) |
| 84-92     | 9     | total of status code 11       | when digits: equal to the base    |
| 93-101    | 9     | total of status code 13       | records with that account status  |
| 147-155   | 9     | total of status code 71       | (base positions 124-125); blank:  |
| 156-164   | 9     | total of status code 78       | not declared, unchecked           |
| 165-173   | 9     | total of status code 80       |                                   |
| 174-182   | 9     | total of status code 82       |                                   |
| 255-263   | 9     | total of status code 97       |                                   |
| 408-416   | 9     | total current balance (ext.)  | when digits: the sum of the base  |
|           |       |                               | records' current balance (155-163)|
| 417-425   | 9     | total amount past due (ext.)  | when digits: the sum of their     |
|           |       |                               | amount past due (164-172)         |
| others    |       | Metro 2's other totals        | (zero- or blank-filled; unread)   |

A base record's status or amount that is blank (or not digits) counts as none. A trailer
total that is neither digits nor blank, or that disagrees, refuses the file (422), as a
wrong count does: a file whose totals do not add up is malformed. The "ext." totals are
the lender's (loans' `reporting/domain.py`), in space the certified trailer reserves.
"""

from __future__ import annotations

import hmac
import os
import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

DEFAULT_SUBSCRIBER_KEY = "sandbox-subscriber-key"
SUBSCRIBER_KEY = os.environ.get("EXPENSURA_BUREAU_SUBSCRIBER_KEY") or DEFAULT_SUBSCRIBER_KEY
PROBLEM = "application/problem+json"
RECORD_LENGTH = 426
RDW = "0426"
# Derives stable report, file and dispute ids: the same inquiry gets the same id after a restart.
_NAMESPACE = uuid.UUID("5f0c6a5e-6d1b-4a43-9a57-2b0e1c1a0426")

BUREAU = {
    "name": "Sandbox Credit Bureau",
    "address": "P.O. Box 740256, Sandbox City, CA 90000",
    "phone": "1-800-555-0142",
    "website": "https://bureau.sandbox.example",
}

app = FastAPI(title="Sandbox credit bureau", version="1.0.0")


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def _problem(status: int, title: str, detail: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


@app.exception_handler(Problem)
async def _on_problem(_: Request, exc: Problem) -> JSONResponse:
    return _problem(exc.status, exc.title, exc.detail)


@app.exception_handler(RequestValidationError)
async def _on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    return _problem(422, "Invalid request", "the request breaks the protocol", errors=errors)


@app.exception_handler(StarletteHTTPException)
async def _on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return _problem(exc.status_code, str(exc.detail))


class Profile(StrEnum):
    GOOD = "good"
    POOR = "poor"
    THIN = "thin"
    FROZEN = "frozen"


class PermissiblePurpose(StrEnum):
    """FCRA §604 purposes a lender may pull a report for."""

    CREDIT_TRANSACTION = "credit-transaction"
    ACCOUNT_REVIEW = "account-review"
    COLLECTION = "collection"


class DisputeOutcome(StrEnum):
    VERIFIED_AS_REPORTED = "verified-as-reported"
    MODIFIED = "modified"
    DELETED = "deleted"


class Inquiry(BaseModel):
    subscriber_id: str = Field(min_length=1, max_length=100)
    permissible_purpose: PermissiblePurpose
    consumer_reference: str = Field(min_length=1, max_length=200)
    inquiry_id: str = Field(min_length=1, max_length=100)


class ProfileChoice(BaseModel):
    profile: Profile


class Outage(BaseModel):
    down: bool


class DisputeReceived(BaseModel):
    account_number: str = Field(min_length=1, max_length=30)
    consumer_reference: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)


class DisputeResponse(BaseModel):
    outcome: DisputeOutcome
    note: str = Field(max_length=2000)


class _State:
    def __init__(self) -> None:
        self.down = False
        self.profiles: dict[str, Profile] = {}
        self.reports: dict[tuple[str, str], tuple[Inquiry, dict[str, Any]]] = {}
        self.files: dict[tuple[str, str], dict[str, Any]] = {}
        self.disputes: list[dict[str, Any]] = []
        self.responses: dict[str, dict[str, Any]] = {}


_state = _State()


async def _subscriber(authorization: Annotated[str | None, Header()] = None) -> None:
    # Outage first: a bureau that is down answers nothing else.
    if _state.down:
        raise Problem(503, "Service unavailable", "the bureau is down; retry later")
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(key.encode(), SUBSCRIBER_KEY.encode()):
        raise Problem(401, "Unauthorized", "a valid subscriber key is required")


Subscriber = Depends(_subscriber)


_CREDIT: dict[Profile, dict[str, int]] = {
    Profile.GOOD: {
        "months_since_oldest_tradeline": 96,
        "open_tradelines": 4,
        "total_monthly_debt_payments_cents": 45_000,
        "revolving_utilisation_percent": 18,
        "delinquencies_last_24_months": 0,
        "inquiries_last_12_months": 1,
        "public_records": 0,
    },
    Profile.POOR: {
        "months_since_oldest_tradeline": 40,
        "open_tradelines": 6,
        "total_monthly_debt_payments_cents": 285_000,
        "revolving_utilisation_percent": 92,
        "delinquencies_last_24_months": 3,
        "inquiries_last_12_months": 7,
        "public_records": 0,
    },
    Profile.THIN: {
        "months_since_oldest_tradeline": 3,
        "open_tradelines": 1,
        "total_monthly_debt_payments_cents": 5_000,
        "revolving_utilisation_percent": 0,
        "delinquencies_last_24_months": 0,
        "inquiries_last_12_months": 1,
        "public_records": 0,
    },
}

_SCORES: dict[Profile, dict[str, Any]] = {
    Profile.GOOD: {
        "value": 760,
        "model": "sandbox-score-v1",
        "key_factors": [
            "Length of time accounts have been established",
            "Number of recent inquiries",
        ],
    },
    Profile.POOR: {
        "value": 560,
        "model": "sandbox-score-v1",
        "key_factors": [
            "Serious delinquency",
            "Proportion of balances to credit limits is too high on revolving accounts",
            "Too many inquiries in the last 12 months",
            "Total of monthly payments on accounts is too high",
        ],
    },
}


def _report(body: Inquiry, profile: Profile) -> dict[str, Any]:
    status = {Profile.FROZEN: "frozen", Profile.THIN: "no-file"}.get(profile, "ok")
    consumer = None
    if profile is not Profile.FROZEN:
        # Prohibited bases (age, marital status) are in the report on purpose: the
        # assessment must be able to prove it ignores them.
        consumer = {
            "full_name": f"Sandbox Consumer {body.consumer_reference[-6:]}",
            "date_of_birth": "1961-04-17",
            "address": "1200 Test Lane, Springfield, IL 62701",
            "marital_status": "married",
        }
    return {
        "report_id": str(uuid.uuid5(_NAMESPACE, f"report/{body.subscriber_id}/{body.inquiry_id}")),
        "inquiry_id": body.inquiry_id,
        "status": status,
        "bureau": dict(BUREAU),
        "score": dict(_SCORES[profile]) if profile in _SCORES else None,
        "credit": dict(_CREDIT[profile]) if profile in _CREDIT else None,
        "consumer": consumer,
    }


@app.post("/v1/inquiries", dependencies=[Subscriber])
async def inquire(body: Inquiry) -> dict[str, Any]:
    key = (body.subscriber_id, body.inquiry_id)
    if key in _state.reports:
        first, report = _state.reports[key]
        if first != body:
            raise Problem(409, "Conflict", "this inquiry id was used for another inquiry")
        return report
    profile = _state.profiles.get(body.consumer_reference, Profile.GOOD)
    report = _report(body, profile)
    _state.reports[key] = (body, report)
    return report


# --- furnishing -------------------------------------------------------------------------


def _field(record: str, first: int, last: int) -> str:
    """Positions `first`..`last`, 1-based and inclusive, as the layout tables give them."""
    return record[first - 1 : last]


def _mmddyyyy(value: str, what: str) -> date:
    try:
        return datetime.strptime(value, "%m%d%Y").date()
    except ValueError:
        raise Problem(422, "Invalid file", f"{what} {value!r} is not a date MMDDYYYY") from None


def _check_record(record: str, what: str) -> None:
    if len(record) != RECORD_LENGTH or not record.isascii():
        raise Problem(422, "Invalid file", f"the {what} is not {RECORD_LENGTH} ASCII characters")
    if _field(record, 1, 4) != RDW:
        raise Problem(422, "Invalid file", f"the {what}'s record descriptor word is not {RDW}")


def _base_record_problem(record: str) -> str | None:
    if len(record) != RECORD_LENGTH:
        return f"record is {len(record)} characters, not {RECORD_LENGTH}"
    if not record.isascii():
        return "record is not ASCII"
    if _field(record, 1, 4) != RDW:
        return f"record descriptor word is not {RDW}"
    if _field(record, 5, 5) != "1":
        return "processing indicator is not 1"
    return None


def _parse_header(header: str) -> dict[str, Any]:
    _check_record(header, "header")
    if _field(header, 5, 10) != "HEADER":
        raise Problem(422, "Invalid file", "the first record is not a header")
    furnisher_id = _field(header, 13, 22).strip()
    if not furnisher_id:
        raise Problem(422, "Invalid file", "the header names no furnisher id (13-22)")
    return {
        "furnisher_id": furnisher_id,
        "activity_date": _mmddyyyy(_field(header, 48, 55), "activity date").isoformat(),
        "date_created": _mmddyyyy(_field(header, 56, 63), "date created").isoformat(),
        "reporter_name": _field(header, 80, 119).strip(),
    }


def _trailer_base_records(trailer: str) -> int:
    _check_record(trailer, "trailer")
    if _field(trailer, 5, 11) != "TRAILER":
        raise Problem(422, "Invalid file", "the last record is not a trailer")
    total = _field(trailer, 12, 20)
    if not (total.isascii() and total.isdigit()):
        raise Problem(422, "Invalid file", "the trailer's total base records is not a number")
    return int(total)


# Trailer totals by account status code (Metro 2's positions), and the two money totals.
_STATUS_TOTALS = {
    "11": (84, 92),
    "13": (93, 101),
    "71": (147, 155),
    "78": (156, 164),
    "80": (165, 173),
    "82": (174, 182),
    "97": (255, 263),
}
_MONEY_TOTALS = {
    "total current balance": ((408, 416), (155, 163)),
    "total amount past due": ((417, 425), (164, 172)),
}


def _digits_or_zero(value: str) -> int:
    return int(value) if value.isascii() and value.isdigit() else 0


def _check_totals(base_records: list[str], trailer: str) -> None:
    """Each total the trailer declares (digits; blank: not declared) must add up."""
    declared: dict[str, tuple[str, int]] = {}
    for code, (first, last) in _STATUS_TOTALS.items():
        actual = sum(1 for r in base_records if _field(r, 124, 125) == code)
        declared[f"total of status {code}"] = (_field(trailer, first, last), actual)
    for name, ((first, last), (bfirst, blast)) in _MONEY_TOTALS.items():
        actual = sum(_digits_or_zero(_field(r, bfirst, blast)) for r in base_records)
        declared[name] = (_field(trailer, first, last), actual)
    for name, (value, actual) in declared.items():
        if not value.strip():
            continue
        if not (value.isascii() and value.isdigit()):
            raise Problem(422, "Invalid file", f"the trailer's {name} is not a number")
        if int(value) != actual:
            raise Problem(
                422,
                "Invalid file",
                f"the trailer's {name} is {int(value)}; the base records make {actual}",
            )


@app.post("/v1/furnishing", dependencies=[Subscriber])
async def furnish(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "text/plain":
        raise Problem(415, "Unsupported media type", "send the file as text/plain")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(422, "Invalid file", "the file is not text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2:
        raise Problem(422, "Invalid file", "a file needs a header and a trailer")
    header = _parse_header(lines[0])
    base_records = lines[1:-1]
    declared = _trailer_base_records(lines[-1])
    if declared != len(base_records):
        raise Problem(
            422,
            "Invalid file",
            f"the trailer counts {declared} base records; the file has {len(base_records)}",
        )
    _check_totals(base_records, lines[-1])
    key = (header["furnisher_id"], header["activity_date"])
    if key in _state.files:  # the same file again: a retry
        return dict(_state.files[key]["receipt"])
    rejected = [
        {"line": n, "reason": reason}
        for n, record in enumerate(base_records, start=2)
        if (reason := _base_record_problem(record)) is not None
    ]
    receipt = {
        "file_id": str(uuid.uuid5(_NAMESPACE, f"file/{key[0]}/{key[1]}")),
        "accepted": len(base_records) - len(rejected),
        "rejected": rejected,
    }
    _state.files[key] = {
        "receipt": receipt,
        **header,
        "base_records": len(base_records),
        "records": base_records,
        "received_at": datetime.now(UTC).isoformat(),
    }
    return dict(receipt)


# --- disputes ---------------------------------------------------------------------------


@app.get("/v1/disputes", dependencies=[Subscriber])
async def disputes(after: str = "") -> dict[str, Any]:
    return {"disputes": [d for d in _state.disputes if d["dispute_id"] > after]}


@app.post("/v1/disputes/{dispute_id}/response", dependencies=[Subscriber])
async def respond(dispute_id: str, body: DisputeResponse) -> dict[str, Any]:
    if not any(d["dispute_id"] == dispute_id for d in _state.disputes):
        raise Problem(404, "Not found", f"no dispute {dispute_id}")
    answer = {"dispute_id": dispute_id, "outcome": body.outcome.value, "note": body.note}
    earlier = _state.responses.get(dispute_id)
    if earlier is not None and (earlier["outcome"], earlier["note"]) != (
        answer["outcome"],
        answer["note"],
    ):
        raise Problem(409, "Conflict", f"dispute {dispute_id} was answered differently")
    if earlier is None:
        _state.responses[dispute_id] = {**answer, "answered_at": datetime.now(UTC).isoformat()}
    return dict(_state.responses[dispute_id])


# --- test controls ----------------------------------------------------------------------


@app.put("/sandbox/consumers/{consumer_reference}")
async def choose_profile(consumer_reference: str, body: ProfileChoice) -> dict[str, str]:
    _state.profiles[consumer_reference] = body.profile
    return {"consumer_reference": consumer_reference, "profile": body.profile.value}


@app.put("/sandbox/outage")
async def outage(body: Outage) -> dict[str, bool]:
    _state.down = body.down
    return {"down": _state.down}


@app.post("/sandbox/disputes", status_code=201)
async def receive_dispute(body: DisputeReceived) -> dict[str, Any]:
    # Zero-filled sequence numbers: ids sort in the order received, which `after` relies on.
    dispute = {
        "dispute_id": f"DSP-{len(_state.disputes) + 1:010d}",
        "account_number": body.account_number,
        "consumer_reference": body.consumer_reference,
        "reason": body.reason,
        "received_at": datetime.now(UTC).isoformat(),
    }
    _state.disputes.append(dispute)
    return dict(dispute)


@app.get("/sandbox/disputes")
async def disputes_answered() -> dict[str, list[dict[str, Any]]]:
    return {
        "disputes": [
            {**d, "response": _state.responses.get(d["dispute_id"])} for d in _state.disputes
        ]
    }


@app.get("/sandbox/furnished")
async def furnished() -> dict[str, list[dict[str, Any]]]:
    return {
        "files": [
            {
                "file_id": f["receipt"]["file_id"],
                "furnisher_id": f["furnisher_id"],
                "activity_date": f["activity_date"],
                "date_created": f["date_created"],
                "reporter_name": f["reporter_name"],
                "base_records": f["base_records"],
                "accepted": f["receipt"]["accepted"],
                "rejected": f["receipt"]["rejected"],
                "records": f["records"],
                "received_at": f["received_at"],
            }
            for f in _state.files.values()
        ]
    }


@app.get("/sandbox/state")
async def state() -> dict[str, Any]:
    return {
        "down": _state.down,
        "inquiries": len(_state.reports),
        "files": len(_state.files),
        "disputes": len(_state.disputes),
    }
