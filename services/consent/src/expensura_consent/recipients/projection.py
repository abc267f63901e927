"""Who may be named as a recipient: the partners the sharing gateway registered.

Consent refuses a consent or a legal ground naming a recipient that does not exist. It
learns the partners from the gateway's `sharing.PartnerRegistered` events, never from the
gateway's tables; a partner registered a moment ago may take a moment to arrive.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.recipients import store
from expensura_consent.recipients.domain import Recipient
from expensura_consent.tables import registered_partners
from expensura_events.catalog.sharing import PartnerRegistered
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection

__all__ = ["RegisteredPartners", "registered_partners"]


class RegisteredPartners(Projection):
    name = "registered-partners"
    sources = ("sharing-gateway",)
    tables = (registered_partners,)

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        payload = event.payload
        if not isinstance(payload, PartnerRegistered):
            return
        partner = Recipient(payload.partner_id, payload.kind, payload.name)
        await store.add_partner(conn, partner, event.occurred_at)
