"""A sandbox real-name verification agency (JSON over HTTP), started by `make run` and the tests.

Protocol: `POST /v1/verifications` with {transaction_id, id_number, bank_card, mobile,
face_ref} → 200 {transaction_id, outcome: verified | mismatch, verified_at, verifier,
trust_framework, evidence}. Repeating a transaction id returns the first answer.

Deterministic outcomes, chosen by the request:
- mobile ending in 9999 → mismatch (the agency's records disagree);
- mobile ending in 0000 → 503, the agency is unavailable for this request;
- mobile ending in 5555 → answers after 10 s (slow; callers time out first);
- `POST /sandbox/outage {"down": true}` → every request 503 until set back to false;
- anything else → verified.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

app = FastAPI(title="Sandbox verification agency", version="1.0.0")
_answers: dict[str, dict[str, Any]] = {}
_state = {"down": False, "requests": 0}


class VerificationRequest(BaseModel):
    transaction_id: str = Field(min_length=8, max_length=100)
    id_number: str = Field(min_length=15, max_length=18)
    bank_card: str = Field(min_length=12, max_length=19)
    mobile: str = Field(min_length=8, max_length=16)
    face_ref: str | None = Field(default=None, max_length=200)


class Outage(BaseModel):
    down: bool


@app.post("/v1/verifications", response_model=None)
async def verify(body: VerificationRequest) -> dict[str, Any] | JSONResponse:
    _state["requests"] += 1
    if _state["down"] or body.mobile.endswith("0000"):
        return JSONResponse({"error": "agency unavailable"}, status_code=503)
    if body.transaction_id in _answers:
        return _answers[body.transaction_id]
    if body.mobile.endswith("5555"):
        await asyncio.sleep(10)
    outcome = "mismatch" if body.mobile.endswith("9999") else "verified"
    answer = {
        "transaction_id": body.transaction_id,
        "outcome": outcome,
        "verified_at": datetime.now(UTC).isoformat(),
        "verifier": "Sandbox National Identity Verification Center",
        "trust_framework": "cn_rnv",
        "evidence": [
            {"type": "document", "document_type": "idcard", "check_method": "vpip"},
            {"type": "electronic_record", "record_type": "bank_account"},
        ]
        + ([{"type": "electronic_record", "record_type": "face_match"}] if body.face_ref else []),
    }
    _answers[body.transaction_id] = answer
    return answer


@app.post("/sandbox/outage")
async def outage(body: Outage) -> dict[str, Any]:
    _state["down"] = body.down
    return dict(_state)


@app.get("/sandbox/state")
async def state() -> dict[str, Any]:
    return dict(_state)
