"""The recipients an app or an officer may name: the registered partners, and `public`."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from expensura_consent.recipients.projection import registered_partners
from expensura_events.vocabulary import PUBLIC_RECIPIENT
from expensura_events.web.auth import Runtime

router = APIRouter(tags=["recipients"])


class Recipient(BaseModel):
    recipient: str
    kind: str
    name: str


@router.get("/v1/recipients")
async def recipients(rt: Runtime) -> list[Recipient]:
    """Every recipient a consent or a legal ground may name: the partners registered at the
    sharing gateway (by id, with their kind and name), and `public` for public disclosure
    (PUB-1)."""
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(registered_partners).order_by(registered_partners.c.partner_id)
        )
        partners = [Recipient(recipient=r.partner_id, kind=r.kind, name=r.name) for r in rows]
    public = Recipient(recipient=PUBLIC_RECIPIENT, kind="public", name="Public disclosure (PUB-1)")
    return [public, *partners]
