"""Proofs from the logs, for auditors: what the logs show, not what the tables say."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import httpx

from expensura_events.service_identity import ServiceIdentity


async def log_records(
    client: httpx.AsyncClient, base_url: str, headers: Callable[[], dict[str, str]]
) -> AsyncIterator[dict[str, Any]]:
    """A service's whole log through its feed, each record's stored JSON parsed."""
    after = 0
    while True:
        resp = await client.get(
            f"{base_url.rstrip('/')}/internal/log",
            params={"after": after, "limit": 1000},
            headers=headers(),
        )
        resp.raise_for_status()
        events = resp.json()["events"]
        if not events:
            return
        for item in events:
            yield json.loads(item["record"]) | {"sequence": item["seq"]}
        after = events[-1]["seq"]


@dataclass(frozen=True)
class WithdrawalProof:
    subject_id: str
    consent_id: str
    withdrawn_at: datetime | None
    before: list[dict[str, Any]]  # disclosures under the consent decided before withdrawal
    after: list[dict[str, Any]]  # … decided at or after it: must be empty

    @property
    def holds(self) -> bool:
        return self.withdrawn_at is not None and not self.after


async def no_disclosure_after_withdrawal(
    urls: dict[str, str], identity: ServiceIdentity, subject_id: str, consent_id: str
) -> WithdrawalProof:
    """Read with `identity`'s service tokens (the feeds admit services only)."""
    withdrawn_at: datetime | None = None
    async with httpx.AsyncClient(timeout=30) as client:
        async for rec in log_records(
            client, urls["consent"], partial(identity.headers_for, "consent")
        ):
            p = rec["payload"]
            if (
                rec["event_type"] == "consent.ConsentWithdrawn"
                and rec["subject_id"] == subject_id
                and p.get("consent_id") == consent_id
            ):
                withdrawn_at = datetime.fromisoformat(rec["recorded_at"])
        made = []
        async for rec in log_records(
            client, urls["sharing-gateway"], partial(identity.headers_for, "sharing-gateway")
        ):
            p = rec["payload"]
            if (
                rec["event_type"] in ("sharing.DisclosureMade", "sharing.PublicDisclosureMade")
                and rec["subject_id"] == subject_id
                and p.get("basis", {}).get("consent_id") == consent_id
            ):
                made.append(
                    {
                        "sequence": rec["sequence"],
                        "partner": p.get("partner_id", "public"),
                        "decided_at": p.get("decided_at") or rec["occurred_at"],
                        "decision_id": p["decision_id"],
                        "fields": p["fields"],
                    }
                )
    if withdrawn_at is None:
        return WithdrawalProof(subject_id, consent_id, None, made, [])
    before = [m for m in made if datetime.fromisoformat(m["decided_at"]) < withdrawn_at]
    after = [m for m in made if datetime.fromisoformat(m["decided_at"]) >= withdrawn_at]
    return WithdrawalProof(subject_id, consent_id, withdrawn_at, before, after)
