"""The gateway's synchronous calls. Both are correctness requirements, not conveniences:
the consent decision must be current at the moment of disclosure (RGT-4), and the values
come from the service that holds them, which checks the decision again before releasing.
Also consent's log, read for the proof of a withdrawal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx

from expensura_events.contracts.decisions import DecisionOut, DecisionRequest
from expensura_events.decisions_client import ConsentUnavailable, request_decision
from expensura_events.outbound import http_client
from expensura_events.service_identity import ServiceIdentity
from expensura_events.vocabulary import DataCategory, Purpose
from expensura_sharing_gateway.disclosures.domain import DependencyDown

__all__ = ["DependencyDown", "decide", "disclosable_values", "log_records"]


async def decide(
    urls: dict[str, str],
    subject_id: str,
    purpose: Purpose,
    categories: list[str],
    recipient: str,
    *,
    caller: ServiceIdentity,
    fields: list[str] | None = None,
    timeout: float = 5.0,
) -> DecisionOut:
    """Consent's decision; with `fields`, a grant identity may redeem for those only."""
    request = DecisionRequest(
        subject_id=subject_id,
        purpose=purpose,
        categories=[DataCategory(c) for c in categories],
        recipient=recipient,
        fields=fields,
        requester="sharing-gateway",
    )
    try:
        return await request_decision(urls["consent"], request, caller=caller, timeout=timeout)
    except ConsentUnavailable as exc:
        raise DependencyDown(str(exc)) from None


async def disclosable_values(
    urls: dict[str, str],
    subject_id: str,
    fields: list[str],
    decision_id: UUID,
    partner_id: str,
    *,
    caller: ServiceIdentity,
    timeout: float = 5.0,
) -> dict[str, str | None]:
    try:
        async with http_client(timeout=timeout) as client:
            resp = await client.get(
                f"{urls['identity'].rstrip('/')}/internal/subjects/{subject_id}/disclosable",
                params={"fields": fields, "decision_id": str(decision_id), "recipient": partner_id},
                headers=caller.headers_for("identity"),
            )
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise DependencyDown(f"identity: {exc!r}") from None
    values: dict[str, str | None] = resp.json()["values"]
    return values


async def log_records(
    base_url: str, service: str, caller: ServiceIdentity
) -> AsyncIterator[dict[str, Any]]:
    """A service's whole log through its feed, each record's stored JSON parsed (with its
    sequence number); the feed admits services only, so each page carries a token."""
    after = 0
    async with http_client(timeout=30) as client:
        while True:
            resp = await client.get(
                f"{base_url.rstrip('/')}/internal/log",
                params={"after": after, "limit": 1000},
                headers=caller.headers_for(service),
            )
            resp.raise_for_status()
            events = resp.json()["events"]
            if not events:
                return
            for item in events:
                yield json.loads(item["record"]) | {"sequence": item["seq"]}
            after = events[-1]["seq"]
