"""Partner authentication in SQL: the credential behind a client id, and the nonces seen."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.four_eyes import Approval, in_effect
from expensura_events.retention import Expiry
from expensura_sharing_gateway.partners.domain import Credential, PartnerKind
from expensura_sharing_gateway.partners.store import to_credential
from expensura_sharing_gateway.tables import partner_credentials, partners, request_nonces


async def client(
    conn: AsyncConnection, client_id: str
) -> tuple[Credential, str, PartnerKind, bool] | None:
    """The credential, its secret's hash, the partner's kind and whether the partner is
    registered (its registration approved)."""
    row = (
        await conn.execute(
            select(
                partner_credentials,
                partners.c.kind,
                partners.c.approval.label("partner_approval"),
            )
            .join(partners, partners.c.partner_id == partner_credentials.c.partner_id)
            .where(partner_credentials.c.client_id == client_id)
        )
    ).one_or_none()
    if row is None:
        return None
    registered = in_effect(Approval(row.partner_approval))
    return to_credential(row), row.secret_hash, PartnerKind(row.kind), registered


async def is_revoked(conn: AsyncConnection, client_id: str) -> bool:
    """True also for a credential that no longer exists."""
    row = (
        await conn.execute(
            select(partner_credentials.c.revoked_at).where(
                partner_credentials.c.client_id == client_id
            )
        )
    ).one_or_none()
    return row is None or row.revoked_at is not None


async def use_nonce(conn: AsyncConnection, partner_id: str, nonce: str, at: datetime) -> bool:
    """False if the partner used the nonce before."""
    seen = await conn.execute(
        insert(request_nonces)
        .values(partner_id=partner_id, nonce=nonce, seen_at=at)
        .on_conflict_do_nothing()
    )
    return seen.rowcount == 1


def nonce_expiry(retention_seconds: int) -> Expiry:
    """Nonces seen longer ago than the retention (always more than the replay window)."""
    return Expiry(request_nonces, "seen_at", timedelta(seconds=retention_seconds))
