"""The gateway's synchronous calls. Both are correctness requirements, not conveniences:
the consent decision must be current at the moment of disclosure (RGT-4), and the values
come from the service that holds them, which checks the decision again before releasing."""

from __future__ import annotations

from uuid import UUID

import httpx

from expensura_events.contracts.decisions import DecisionOut, DecisionRequest
from expensura_events.vocabulary import DataCategory, Purpose


class DependencyDown(Exception):
    """Consent or identity did not answer: nothing is disclosed."""


async def decide(
    urls: dict[str, str], subject_id: str, purpose: Purpose, categories: list[str], recipient: str
) -> DecisionOut:
    request = DecisionRequest(
        subject_id=subject_id,
        purpose=purpose,
        categories=[DataCategory(c) for c in categories],
        recipient=recipient,
        requester="sharing-gateway",
    )
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.post(
                f"{urls['consent'].rstrip('/')}/internal/decisions",
                json=request.model_dump(mode="json"),
            )
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise DependencyDown(f"consent: {exc!r}") from None
    return DecisionOut.model_validate(resp.json())


async def disclosable_values(
    urls: dict[str, str], subject_id: str, fields: list[str], decision_id: UUID, partner_id: str
) -> dict[str, str | None]:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.get(
                f"{urls['identity'].rstrip('/')}/internal/subjects/{subject_id}/disclosable",
                params={"fields": fields, "decision_id": str(decision_id), "recipient": partner_id},
            )
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise DependencyDown(f"identity: {exc!r}") from None
    values: dict[str, str | None] = resp.json()["values"]
    return values
