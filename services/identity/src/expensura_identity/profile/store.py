"""The profile's own rows: the device index (ids and channels only) and anonymous
interactions (no identifier at all)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_identity.tables import devices, interaction_events


async def insert_device(
    conn: AsyncConnection,
    device_id: UUID,
    subject_id: str,
    tracking_allowed: bool,
    channel: str,
    at: datetime,
) -> None:
    await conn.execute(
        devices.insert().values(
            device_id=device_id,
            subject_id=subject_id,
            tracking_allowed=tracking_allowed,
            channel=channel,
            registered_at=at,
        )
    )


async def insert_interactions(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await conn.execute(interaction_events.insert(), list(rows))
