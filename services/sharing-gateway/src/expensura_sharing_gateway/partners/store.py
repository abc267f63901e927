"""The partner registry in SQL: partners, agreements, credentials. A revocation is a
compare-and-set on the credential not yet revoked, so two officers revoking at once record
one revocation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.vocabulary import Purpose
from expensura_sharing_gateway.partners.domain import (
    Agreement,
    AgreementTerms,
    Credential,
    PartnerKind,
)
from expensura_sharing_gateway.tables import agreements, partner_credentials, partners


async def add_partner(
    conn: AsyncConnection, partner_id: str, name: str, kind: PartnerKind, at: datetime
) -> bool:
    """False if the partner id is taken (the row is left as it was)."""
    added = await conn.execute(
        insert(partners)
        .values(partner_id=partner_id, name=name, kind=kind.value, created_at=at)
        .on_conflict_do_nothing()
    )
    return added.rowcount == 1


async def partner_exists(conn: AsyncConnection, partner_id: str) -> bool:
    found = await conn.execute(
        select(partners.c.partner_id).where(partners.c.partner_id == partner_id)
    )
    return found.first() is not None


async def add_agreement(
    conn: AsyncConnection, agreement_id: UUID, partner_id: str, terms: AgreementTerms
) -> None:
    await conn.execute(
        agreements.insert().values(
            agreement_id=agreement_id,
            partner_id=partner_id,
            reference=terms.reference,
            purposes=[p.value for p in terms.purposes],
            fields=terms.fields,
            inbound=terms.inbound,
            starts_at=terms.starts_at,
            ends_at=terms.ends_at,
        )
    )


def to_agreement(row: Any) -> Agreement:
    return Agreement(
        str(row.agreement_id),
        row.reference,
        frozenset(Purpose(p) for p in row.purposes),
        frozenset(row.fields),
        row.inbound,
        row.starts_at,
        row.ends_at,
    )


async def agreements_of(conn: AsyncConnection, partner_id: str) -> list[Agreement]:
    rows = await conn.execute(select(agreements).where(agreements.c.partner_id == partner_id))
    return [to_agreement(r) for r in rows]


def to_credential(row: Any) -> Credential:
    return Credential(
        client_id=row.client_id,
        partner_id=row.partner_id,
        scopes=tuple(row.scopes),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


async def add_credential(
    conn: AsyncConnection, credential: Credential, secret_hash: str, at: datetime
) -> None:
    await conn.execute(
        partner_credentials.insert().values(
            client_id=credential.client_id,
            partner_id=credential.partner_id,
            secret_hash=secret_hash,
            scopes=list(credential.scopes),
            created_at=at,
            expires_at=credential.expires_at,
        )
    )


async def credential_of(
    conn: AsyncConnection, partner_id: str, client_id: str
) -> Credential | None:
    row = (
        await conn.execute(
            select(partner_credentials).where(
                partner_credentials.c.client_id == client_id,
                partner_credentials.c.partner_id == partner_id,
            )
        )
    ).one_or_none()
    return None if row is None else to_credential(row)


async def revoke_credential(conn: AsyncConnection, client_id: str, at: datetime) -> bool:
    """Compare-and-set: True only for the call that revoked it."""
    changed = await conn.execute(
        update(partner_credentials)
        .where(
            partner_credentials.c.client_id == client_id,
            partner_credentials.c.revoked_at.is_(None),
        )
        .values(revoked_at=at)
    )
    return changed.rowcount == 1
