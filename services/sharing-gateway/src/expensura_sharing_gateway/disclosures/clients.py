"""The gateway's synchronous calls. Both are correctness requirements, not conveniences:
the consent decision must be current at the moment of disclosure (RGT-4), and the values
come from the service that holds them, which checks the decision again before releasing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from expensura_events.vocabulary import Purpose


class DependencyDown(Exception):
    """Consent or identity did not answer: nothing is disclosed."""


@dataclass(frozen=True)
class ConsentDecision:
    decision_id: str
    allowed: bool
    reason: str
    basis: dict[str, Any]
    decided_at: str


async def decide(
    urls: dict[str, str], subject_id: str, purpose: Purpose, categories: list[str], recipient: str
) -> ConsentDecision:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.post(
                f"{urls['consent'].rstrip('/')}/internal/decisions",
                json={
                    "subject_id": subject_id,
                    "purpose": purpose.value,
                    "categories": categories,
                    "recipient": recipient,
                    "requester": "sharing-gateway",
                },
            )
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise DependencyDown(f"consent: {exc!r}") from None
    body = resp.json()
    return ConsentDecision(
        body["decision_id"], body["allowed"], body["reason"], body["basis"], body["decided_at"]
    )


async def disclosable_values(
    urls: dict[str, str], subject_id: str, fields: list[str], decision_id: str, partner_id: str
) -> dict[str, str | None]:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.get(
                f"{urls['identity'].rstrip('/')}/internal/subjects/{subject_id}/disclosable",
                params={"fields": fields, "decision_id": decision_id, "recipient": partner_id},
            )
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise DependencyDown(f"identity: {exc!r}") from None
    values: dict[str, str | None] = resp.json()["values"]
    return values
