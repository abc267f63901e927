"""What the gateway erases of its own state when a subject is erased.

The disclosure rows name the subject; the DisclosureMade/Refused events stay in the log
(ids, partners, purposes: the proof of what left and why), their subject no longer
identifiable once identity's records are shredded.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_sharing_gateway.tables import disclosures


async def erase_gateway_state(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    result = await conn.execute(delete(disclosures).where(disclosures.c.subject_id == subject_id))
    return {"disclosures": result.rowcount}
