"""The recipients an app or an officer may name: the registered partners, and `public`."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from expensura_consent.recipients import service
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
    return [
        Recipient(recipient=r.recipient, kind=r.kind, name=r.name)
        for r in await service.recipients(rt)
    ]
