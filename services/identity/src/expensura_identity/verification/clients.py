"""The verification agency adapter (JSON over HTTP; the sandbox speaks the same protocol)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from expensura_events.outbound import http_client


class AgencyUnavailable(Exception):
    """Down, slow or erroring: keep the request and try again later."""


@dataclass(frozen=True)
class AgencyAnswer:
    outcome: str  # verified | mismatch
    raw: dict[str, Any]


async def verify(
    base_url: str,
    transaction_id: str,
    id_number: str,
    bank_card: str,
    mobile: str,
    face_ref: str | None,
    *,
    timeout: float = 3.0,
) -> AgencyAnswer:
    try:
        async with http_client(timeout=timeout) as client:
            resp = await client.post(
                f"{base_url.rstrip('/')}/v1/verifications",
                json={
                    "transaction_id": transaction_id,
                    "id_number": id_number,
                    "bank_card": bank_card,
                    "mobile": mobile,
                    "face_ref": face_ref,
                },
            )
    except httpx.HTTPError as exc:
        raise AgencyUnavailable(repr(exc)) from None
    if resp.status_code >= 500:
        raise AgencyUnavailable(f"agency answered {resp.status_code}")
    if resp.status_code >= 400:
        return AgencyAnswer("rejected", {"status": resp.status_code})
    body: dict[str, Any] = resp.json()
    return AgencyAnswer(body["outcome"], body)
