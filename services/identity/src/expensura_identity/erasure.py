"""What identity erases of its own state when a subject is erased (its read models are
purged by the library through Projection.purge_subject)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_identity.tables import (
    accounts,
    devices,
    email_proofs,
    refresh_tokens,
    verification_requests,
)


async def erase_identity_state(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    purged = {}
    result = await conn.execute(delete(accounts).where(accounts.c.account_id == subject_id))
    purged["accounts"] = result.rowcount
    result = await conn.execute(delete(email_proofs).where(email_proofs.c.account_id == subject_id))
    purged["email_proofs"] = result.rowcount
    result = await conn.execute(
        delete(refresh_tokens).where(refresh_tokens.c.principal_id == subject_id)
    )
    purged["refresh_tokens"] = result.rowcount
    result = await conn.execute(
        delete(verification_requests).where(verification_requests.c.subject_id == subject_id)
    )
    purged["verification_requests"] = result.rowcount
    result = await conn.execute(delete(devices).where(devices.c.subject_id == subject_id))
    purged["devices"] = result.rowcount
    return purged
