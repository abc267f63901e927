"""Consent's decisions, asked over HTTP: a release needs the live answer, not a copy."""

from __future__ import annotations

from uuid import UUID

import httpx

from expensura_events.contracts.decisions import DecisionOut


class ConsentUnavailable(Exception):
    """Consent did not answer; nothing is released."""


async def decision(
    consent_url: str, decision_id: UUID, headers: dict[str, str], *, timeout: float = 5
) -> DecisionOut | None:
    """The decision as consent has it; None if consent does not know it. `headers` carry
    identity's service token (consent answers identity only)."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            resp = await client.get(
                f"{consent_url.rstrip('/')}/internal/decisions/{decision_id}", headers=headers
            )
    except httpx.HTTPError as exc:
        raise ConsentUnavailable(repr(exc)) from None
    if resp.status_code != 200:
        return None
    return DecisionOut.model_validate(resp.json())
