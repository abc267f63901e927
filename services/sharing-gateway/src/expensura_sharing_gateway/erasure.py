"""What the gateway erases of its own state when a subject is erased.

The disclosure rows name the subject; the DisclosureMade/Refused events stay in the log
(ids, partners, purposes: the proof of what left and why), their subject no longer
identifiable once identity's records are shredded.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_sharing_gateway.disclosures import store


async def erase_gateway_state(conn: AsyncConnection, subject_id: str) -> dict[str, int]:
    return {"disclosures": await store.delete_disclosures_of(conn, subject_id)}
