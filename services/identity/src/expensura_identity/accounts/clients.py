"""Consent, asked over HTTP before any value leaves: a release needs the live answer."""

from __future__ import annotations

from uuid import UUID

import httpx

from expensura_events.contracts.decisions import DecisionOut, ReleaseRequest
from expensura_events.outbound import http_client
from expensura_identity.accounts.domain import ReleaseRefused


class ConsentUnavailable(Exception):
    """Consent did not answer; nothing is released."""


async def redeem(
    consent_url: str,
    decision_id: UUID,
    ask: ReleaseRequest,
    headers: dict[str, str],
    *,
    timeout: float = 5,
) -> DecisionOut:
    """Redeem the decision as a grant for this release: consent answers with the decision
    re-checked now, or refuses (ReleaseRefused, with consent's reason). `headers` carry
    identity's service token: consent lets only identity redeem."""
    try:
        async with http_client(timeout=timeout) as client:
            resp = await client.post(
                f"{consent_url.rstrip('/')}/internal/decisions/{decision_id}/release",
                json=ask.model_dump(mode="json"),
                headers=headers,
            )
    except httpx.HTTPError as exc:
        raise ConsentUnavailable(type(exc).__name__) from None
    if resp.status_code >= 500:
        raise ConsentUnavailable(f"consent answered {resp.status_code}")
    if resp.status_code != 200:
        detail = resp.json().get("detail") if resp.content else None
        raise ReleaseRefused(str(detail or f"consent refused the release ({resp.status_code})"))
    return DecisionOut.model_validate(resp.json())
