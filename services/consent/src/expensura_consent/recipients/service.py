"""Recipient use cases: the list an app or an officer may name, and the check that a
consent's or a ground's recipients exist (in the caller's transaction)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.recipients import store
from expensura_consent.recipients.domain import PUBLIC, Recipient, check_recipients
from expensura_events.runtime import ServiceRuntime


async def recipients(rt: ServiceRuntime) -> list[Recipient]:
    """The public first, then every registered partner by id."""
    async with rt.engine.connect() as conn:
        return [PUBLIC, *await store.partners(conn)]


async def ensure_known(conn: AsyncConnection, named: set[str]) -> None:
    """Raises UnknownRecipients unless every named recipient exists."""
    check_recipients(named, await store.registered(conn, named))
