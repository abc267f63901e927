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
    before: list[dict[str, Any]]  # data that left under the consent before its withdrawal
    after: list[dict[str, Any]]  # … at or after it: must be empty

    @property
    def holds(self) -> bool:
        return self.withdrawn_at is not None and not self.after


def _is_release(rec: dict[str, Any], subject_id: str, consent_id: str) -> bool:
    """Identity's record of values it released to someone outside under this consent."""
    basis = rec.get("legal_basis") or {}
    return bool(
        rec["event_type"] == "platform.PersonalDataAccessed"
        and rec["subject_id"] == subject_id
        and rec["actor"]["kind"] == "partner"
        and basis.get("ground") == "consent"
        and basis.get("reference") == consent_id
    )


async def no_disclosure_after_withdrawal(
    urls: dict[str, str], identity: ServiceIdentity, subject_id: str, consent_id: str
) -> WithdrawalProof:
    """Nothing left under a consent after it was withdrawn, by any path: the gateway's
    disclosures (by when consent decided them) and every release of values identity made
    (by when it made it), so a release that bypassed the gateway is counted too. Read with
    `identity`'s service tokens (the feeds admit services only)."""

    def feed(name: str) -> AsyncIterator[dict[str, Any]]:
        return log_records(client, urls[name], partial(identity.headers_for, name))

    withdrawn_at: datetime | None = None
    left: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=30) as client:
        async for rec in feed("consent"):
            p = rec["payload"]
            if (
                rec["event_type"] == "consent.ConsentWithdrawn"
                and rec["subject_id"] == subject_id
                and p.get("consent_id") == consent_id
            ):
                withdrawn_at = datetime.fromisoformat(rec["recorded_at"])
        async for rec in feed("sharing-gateway"):
            p = rec["payload"]
            if (
                rec["event_type"] in ("sharing.DisclosureMade", "sharing.PublicDisclosureMade")
                and rec["subject_id"] == subject_id
                and p.get("basis", {}).get("consent_id") == consent_id
            ):
                left.append(
                    {
                        "source": "sharing-gateway",
                        "sequence": rec["sequence"],
                        "partner": p.get("partner_id", "public"),
                        "at": p.get("decided_at") or rec["occurred_at"],
                        "decision_id": p["decision_id"],
                        "fields": p["fields"],
                    }
                )
        async for rec in feed("identity"):
            if _is_release(rec, subject_id, consent_id):
                p = rec["payload"]
                left.append(
                    {
                        "source": "identity",
                        "sequence": rec["sequence"],
                        "partner": rec["actor"]["id"],
                        "at": rec["recorded_at"],
                        "decision_id": (p.get("case_reference") or "").removeprefix("decision:"),
                        "fields": p["fields"],
                    }
                )
    if withdrawn_at is None:
        return WithdrawalProof(subject_id, consent_id, None, left, [])
    before = [m for m in left if datetime.fromisoformat(m["at"]) < withdrawn_at]
    after = [m for m in left if datetime.fromisoformat(m["at"]) >= withdrawn_at]
    return WithdrawalProof(subject_id, consent_id, withdrawn_at, before, after)
