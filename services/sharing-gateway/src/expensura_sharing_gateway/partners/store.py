"""The partner registry in SQL: partners, agreements, credentials. A revocation is a
compare-and-set on the credential not yet revoked, so two officers revoking at once record
one revocation; a second officer's decision is a compare-and-set on the row still pending."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import Actor
from expensura_events.four_eyes import Approval
from expensura_events.vocabulary import Purpose
from expensura_sharing_gateway.partners.domain import (
    Agreement,
    AgreementTerms,
    Credential,
    PartnerKind,
    PartnerRecord,
)
from expensura_sharing_gateway.tables import agreements, partner_credentials, partners


def _actor(actor: Actor) -> str:
    return f"{actor.kind.value}:{actor.id}"


async def add_partner(
    conn: AsyncConnection,
    partner_id: str,
    name: str,
    kind: PartnerKind,
    at: datetime,
    requested_by: Actor,
) -> bool:
    """A pending registration; False if the partner id is taken (the row is left as it was)."""
    added = await conn.execute(
        insert(partners)
        .values(
            partner_id=partner_id,
            name=name,
            kind=kind.value,
            created_at=at,
            approval=Approval.PENDING.value,
            requested_by=_actor(requested_by),
        )
        .on_conflict_do_nothing()
    )
    return added.rowcount == 1


async def partner_of(
    conn: AsyncConnection, partner_id: str, *, for_update: bool = False
) -> PartnerRecord | None:
    query = select(partners).where(partners.c.partner_id == partner_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    return PartnerRecord(
        partner_id=row.partner_id,
        kind=PartnerKind(row.kind),
        name=row.name,
        approval=Approval(row.approval),
        requested_by=row.requested_by or "",
    )


async def _decide(
    conn: AsyncConnection,
    table: Table,
    which: ColumnElement[bool],
    approval: Approval,
    by: Actor,
    at: datetime,
) -> bool:
    """pending → approved | rejected for the row `which` selects; False unless it was
    pending."""
    changed = await conn.execute(
        update(table)
        .where(which, table.c.approval == Approval.PENDING.value)
        .values(approval=approval.value, decided_by=_actor(by), decided_at=at)
    )
    return changed.rowcount == 1


async def partner_exists(conn: AsyncConnection, partner_id: str) -> bool:
    found = await conn.execute(
        select(partners.c.partner_id).where(partners.c.partner_id == partner_id)
    )
    return found.first() is not None


async def add_agreement(
    conn: AsyncConnection,
    agreement_id: UUID,
    partner_id: str,
    terms: AgreementTerms,
    requested_by: Actor,
) -> None:
    """A pending agreement: it covers nothing until a second officer approves it."""
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
            approval=Approval.PENDING.value,
            requested_by=_actor(requested_by),
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
        approval=Approval(row.approval),
        requested_by=row.requested_by or "",
    )


async def agreement_of(
    conn: AsyncConnection, partner_id: str, agreement_id: UUID, *, for_update: bool = False
) -> Agreement | None:
    query = select(agreements).where(
        agreements.c.agreement_id == agreement_id, agreements.c.partner_id == partner_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else to_agreement(row)


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
        approval=Approval(row.approval),
        requested_by=row.requested_by or "",
    )


async def add_credential(
    conn: AsyncConnection,
    credential: Credential,
    secret_hash: str,
    at: datetime,
    requested_by: Actor,
) -> None:
    """A pending credential: it authenticates no one until a second officer approves it."""
    await conn.execute(
        partner_credentials.insert().values(
            client_id=credential.client_id,
            partner_id=credential.partner_id,
            secret_hash=secret_hash,
            scopes=list(credential.scopes),
            created_at=at,
            expires_at=credential.expires_at,
            approval=Approval.PENDING.value,
            requested_by=_actor(requested_by),
        )
    )


async def credential_of(
    conn: AsyncConnection, partner_id: str, client_id: str, *, for_update: bool = False
) -> Credential | None:
    query = select(partner_credentials).where(
        partner_credentials.c.client_id == client_id,
        partner_credentials.c.partner_id == partner_id,
    )
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else to_credential(row)


async def credential_by_client_id(
    conn: AsyncConnection, client_id: str, *, for_update: bool = False
) -> Credential | None:
    """The credential a client id names, whichever partner holds it (client ids are unique)."""
    query = select(partner_credentials).where(partner_credentials.c.client_id == client_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
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


async def decide_partner(
    conn: AsyncConnection, partner_id: str, approval: Approval, by: Actor, at: datetime
) -> bool:
    return await _decide(conn, partners, partners.c.partner_id == partner_id, approval, by, at)


async def decide_agreement(
    conn: AsyncConnection, agreement_id: UUID, approval: Approval, by: Actor, at: datetime
) -> bool:
    which = agreements.c.agreement_id == agreement_id
    return await _decide(conn, agreements, which, approval, by, at)


async def decide_credential(
    conn: AsyncConnection, client_id: str, approval: Approval, by: Actor, at: datetime
) -> bool:
    which = partner_credentials.c.client_id == client_id
    return await _decide(conn, partner_credentials, which, approval, by, at)
