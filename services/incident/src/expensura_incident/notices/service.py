"""Customer-notice use cases: recording a requested notice, and delivering those due on
the customer's channels (USE-10), the one notification path of the system.

Delivery of one notice, in three steps:
1. claim (one transaction, rows locked `FOR UPDATE SKIP LOCKED` so two senders never take
   the same row): open the body and the subject's contacts, read their channel choice,
   decide the channel (domain.begin_attempt); a notice to send is marked `ongoing` under a
   lease with its attempt's row, and the transaction COMMITS before anything leaves;
2. send through the channel's provider (providers.py);
3. record the outcome, the attempt's state and the event (`incident.CustomerNoticeDelivered`
   or `…DeliveryFailed`, naming the channel and the next one) in one transaction. A failure
   is retried on the channel after its back-off or falls back to the next channel, due at
   once: the next round takes it.

A crash between 2 and 3 leaves an `ongoing` row, visible as such; once its lease ends it is
due again and sent again. So a notice is delivered exactly once unless the process dies
inside the send itself, and at least once then: never silently dropped.

Only the contacts incident keeps sealed are used (its own copy: notices go out even if
identity is down). Logs carry the notice's kind, channel and outcome, never an address or
the body.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.catalog.loans_notices import CustomerNoticeRequested
from expensura_events.db_errors import error_fields
from expensura_events.envelope import REDACTED, Actor, EventEnvelope, utcnow
from expensura_events.obligations import enforces
from expensura_events.privacy.restrictions import restriction
from expensura_events.runtime import ServiceRuntime
from expensura_events.sealing import place, seal, unseal
from expensura_incident.contacts.domain import UnknownSubject
from expensura_incident.contacts.service import contacts_of, notice_channels_of
from expensura_incident.notices import domain, providers, store
from expensura_incident.notices.domain import CHANNEL_CONTACT, PURPOSE, CustomerNotice, Reach, Step
from expensura_incident.notices.providers import ChannelSender, Outgoing, Undelivered
from expensura_incident.settings import incident_settings
from expensura_incident.tables import customer_notices

log = structlog.get_logger("expensura.incident.notices")

BATCH = 20  # notices claimed per round: each is opened (keys) and sent one by one
ACTOR = Actor.system("notice-sender")


def where(notice_id: UUID) -> str:
    return place(customer_notices.name, notice_id)


async def record_request(rt: ServiceRuntime, conn: AsyncConnection, event: EventEnvelope) -> None:
    """Keep a requested notice: planned, its body sealed again under the subject's key in
    incident's own row (it opens only where it lives); not-needed if the body reads as
    redacted. A second request with the same `notice_id` changes nothing."""
    request = event.payload
    if not isinstance(request, CustomerNoticeRequested):
        return
    notice = domain.plan(
        request.notice_id,
        event.subject_id,
        request.kind,
        request.title,
        request.body,
        event.occurred_at,
    )
    sealed = None
    if notice.state is domain.NoticeState.PLANNED:
        sealed = await seal(
            rt.mapper.cipher, notice.subject_id, where(notice.notice_id), {"body": request.body}
        )
    if await store.add(conn, notice, sealed, event_id=event.event_id, at=event.occurred_at):
        log.info("notice.recorded", kind=notice.kind.value, outcome=notice.state.value)


Senders = Mapping[NoticeChannel, ChannelSender]


@enforces("USE-10")
async def deliver_due_notices(
    rt: ServiceRuntime, senders: Senders, now: datetime, *, limit: int = BATCH
) -> list[CustomerNotice]:
    """One round: every notice due at `now` (at most `limit`) taken one step on, each on
    the channel its rules choose among `senders` (the configured ones); returns the notices
    as they ended the round."""
    settled: list[CustomerNotice] = []
    sending: list[tuple[CustomerNotice, Reach, Outgoing]] = []
    configured = frozenset(senders)
    async with rt.engine.begin() as conn:
        for notice, boxes in await store.claim_due(conn, now, limit):
            body = await _body(rt, notice, boxes)
            contacts = await _contacts(rt, notice.subject_id)
            reach = Reach.of(await notice_channels_of(rt, notice.subject_id), contacts, configured)
            step = domain.begin_attempt(
                notice,
                now,
                restriction=await restriction(conn, notice.subject_id),
                body_erased=body is None,
                reach=reach,
            )
            if not await _record(rt, conn, step, was=notice, at=now):
                continue
            channel = step.notice.channel
            if step.send and body is not None and channel is not None:
                rendered = domain.render(channel, notice.title, body)
                address = contacts[CHANNEL_CONTACT[channel]]
                outgoing = Outgoing(
                    notice.notice_id, notice.kind.value, address, rendered.title, rendered.text
                )
                sending.append((step.notice, reach, outgoing))
            else:
                settled.append(step.notice)
    # Committed: each notice about to be sent is `ongoing` before its message leaves.
    for ongoing, reach, outgoing in sending:
        assert ongoing.channel is not None
        try:
            ref = await senders[ongoing.channel].send(outgoing)
        except Undelivered as exc:
            step = domain.undelivered(ongoing, str(exc), now, permanent=exc.permanent, reach=reach)
        else:
            step = domain.delivered(ongoing, ref)
        async with rt.engine.begin() as conn:
            await _record(rt, conn, step, was=ongoing, at=now)
        settled.append(step.notice)
    return settled


async def notice_sender(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    """The worker: a round every `EXPENSURA_NOTICE_SEND_INTERVAL_SECONDS`, at once again
    while rounds come back full."""
    settings = incident_settings(rt)
    channels = providers.senders(settings)
    while not stop.is_set():
        try:
            while len(await deliver_due_notices(rt, channels, utcnow())) == BATCH:
                if stop.is_set():
                    break
        except Exception as exc:  # database or key store down: next round
            log.warning("notice.sender_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.notice_send_interval_seconds)


async def find(rt: ServiceRuntime, notice_id: UUID) -> CustomerNotice | None:
    async with rt.engine.connect() as conn:
        return await store.find(conn, notice_id)


async def _record(
    rt: ServiceRuntime, conn: AsyncConnection, step: Step, *, was: CustomerNotice, at: datetime
) -> bool:
    """Save the step and append its event; False (nothing written) if another sender moved
    the notice meanwhile (it took the row after this one's lease ended)."""
    notice = step.notice
    if not await store.save(conn, notice, was, at):
        log.warning("notice.moved_meanwhile", kind=notice.kind.value)
        return False
    await store.record_attempts(conn, notice.subject_id, step.attempts, at)
    if step.event is not None:
        await rt.append(
            conn,
            [
                rt.envelope(
                    step.event,
                    stream_id=f"customer-notice-{notice.notice_id}",
                    subject_id=notice.subject_id,
                    actor=ACTOR,
                    purpose=PURPOSE,
                )
            ],
        )
    log.info(
        "notice.step",
        kind=notice.kind.value,
        outcome=notice.state.value,
        channel=None if notice.channel is None else notice.channel.value,
        attempts=notice.attempts,
        will_retry=notice.state is domain.NoticeState.FAILED and notice.next_attempt_at is not None,
    )
    return True


async def _body(rt: ServiceRuntime, notice: CustomerNotice, boxes: object) -> str | None:
    """The notice's body opened; None if it no longer opens (the subject's key destroyed)
    or is gone (the notice had nothing left to do)."""
    if not isinstance(boxes, dict):
        return None
    opened = await unseal(rt.mapper.cipher, notice.subject_id, where(notice.notice_id), boxes)
    body = opened.get("body")
    return body if isinstance(body, str) and body != REDACTED else None


async def _contacts(rt: ServiceRuntime, subject_id: str) -> dict[str, Any]:
    """The subject's contacts from incident's own copy, opened (none if it knows none)."""
    try:
        return await contacts_of(rt, subject_id)
    except UnknownSubject:
        return {}
