"""How a service asks consent for a decision (RGT-4): the contract's models over consent's
internal listener, as the calling service (its signed identity)."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from expensura_events.contracts.decisions import DecisionOut, DecisionRequest
from expensura_events.outbound import http_client
from expensura_events.service_identity import ServiceIdentity


class ConsentUnavailable(Exception):
    """Consent did not answer, or not as this contract says: nothing was decided."""


async def request_decision(
    consent_url: str, request: DecisionRequest, *, caller: ServiceIdentity, timeout: float = 5.0
) -> DecisionOut:
    """Consent's decision on `request`, asked as `caller` (its internal listener)."""
    try:
        async with http_client(timeout=timeout) as client:
            resp = await client.post(
                f"{consent_url.rstrip('/')}/internal/decisions",
                json=request.model_dump(mode="json"),
                headers=caller.headers_for("consent"),
            )
            resp.raise_for_status()
        return DecisionOut.model_validate(resp.json())
    except (httpx.HTTPError, ValueError, ValidationError) as exc:
        raise ConsentUnavailable(f"consent: {exc!r}") from None
