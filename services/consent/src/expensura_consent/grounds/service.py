"""Legal-ground use cases: invoke or request (the row and its event together), a second
officer's approval or rejection, revoke, and the report of every processing without
consent."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.grounds import store
from expensura_consent.grounds.domain import (
    GROUND_READ_CATEGORIES,
    GROUND_READ_FIELDS,
    STAFF_READ_PURPOSE,
    GroundRecord,
    Grouping,
    Invocation,
    InvocationNotFound,
    approval_needed,
    basis,
    count,
    decide,
    ground_stream,
    invoke,
    revoke,
)
from expensura_consent.recipients import service as recipients
from expensura_events.envelope import Actor, utcnow
from expensura_events.four_eyes import AlreadyDecided, Approver, Verdict
from expensura_events.runtime import ServiceRuntime
from expensura_events.sealing import place, seal, unseal


async def invoke_ground(rt: ServiceRuntime, invocation: Invocation, officer: Actor) -> GroundRecord:
    """Record processing without consent: the ground, its evidence, who invoked it and why,
    its scope and its expiry; pending a second officer's approval when it names recipients.
    Raises InvalidInvocation or UnknownRecipients, and then nothing is recorded."""
    invocation_id, now = uuid4(), utcnow()
    event = invoke(invocation_id, invocation, now)
    async with rt.engine.begin() as conn:
        await recipients.ensure_known(conn, set(invocation.recipients))
        await store.insert(
            conn,
            invocation_id,
            invocation,
            officer,
            now,
            approval_needed(invocation),
            await _seal_texts(
                rt,
                invocation.subject_id,
                invocation_id,
                {"evidence_reference": invocation.evidence_reference, "reason": invocation.reason},
            ),
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=ground_stream(invocation_id),
                    subject_id=invocation.subject_id,
                    actor=officer,
                    purpose=invocation.purpose,
                    legal_basis=basis(invocation.ground, invocation_id),
                )
            ],
            expected_version=0,
        )
        recorded = await store.get(conn, invocation_id)
        if recorded is None:  # inserted in this transaction: cannot be missing
            raise RuntimeError(f"invocation {invocation_id} vanished in its own transaction")
        [shown] = await opened(rt, conn, [recorded])
    return shown


async def decide_request(
    rt: ServiceRuntime, invocation_id: UUID, approver: Approver, verdict: Verdict, reason: str
) -> GroundRecord:
    """A second officer approves or rejects a pending request, once. Raises
    InvocationNotFound, NotAnApprover, AlreadyDecided or InvalidInvocation; nothing is
    recorded then."""
    officer = Actor(kind=approver.kind, id=approver.id)
    async with rt.engine.begin() as conn:
        record = await store.get(conn, invocation_id, for_update=True)
        if record is None:
            raise InvocationNotFound(invocation_id)
        approval, event = decide(record, approver, verdict, reason)
        # the row is locked: the compare-and-set only guards against a bug, never a race
        if not await store.decide(conn, invocation_id, approval, officer, utcnow()):
            raise AlreadyDecided(f"invocation {invocation_id} was decided already")
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=ground_stream(invocation_id),
                    subject_id=record.subject_id,
                    actor=officer,
                    purpose=record.purpose,
                    legal_basis=basis(record.ground, invocation_id),
                )
            ],
        )
        decided = await store.get(conn, invocation_id)
        if decided is None:  # locked in this transaction: cannot be missing
            raise RuntimeError(f"invocation {invocation_id} vanished under its lock")
        [shown] = await opened(rt, conn, [decided])
    return shown


async def revoke_ground(rt: ServiceRuntime, invocation_id: UUID, officer: Actor) -> GroundRecord:
    """Revoke an invocation (once: revoking it again records nothing). Raises
    InvocationNotFound."""
    async with rt.engine.begin() as conn:
        record = await store.get(conn, invocation_id, for_update=True)
        if record is None:
            raise InvocationNotFound(invocation_id)
        event = revoke(record)
        if event is not None and await store.revoke(conn, invocation_id, utcnow()):
            await rt.append(
                conn,
                [
                    rt.envelope(
                        event,
                        stream_id=ground_stream(invocation_id),
                        subject_id=record.subject_id,
                        actor=officer,
                        purpose=record.purpose,
                        legal_basis=basis(record.ground, invocation_id),
                    )
                ],
            )
        revoked = await store.get(conn, invocation_id)
        if revoked is None:  # locked in this transaction: cannot be missing
            raise RuntimeError(f"invocation {invocation_id} vanished under its lock")
        [shown] = await opened(rt, conn, [revoked])
    return shown


async def report(
    rt: ServiceRuntime, by: Grouping, reader: Actor
) -> tuple[dict[str, int], list[GroundRecord]]:
    """Every invocation, oldest first, and their count per ground or per requester. The
    report shows each subject's grounds and evidence to the reader: one
    `platform.PersonalDataAccessed` per subject in it, in the same transaction (SEC-3)."""
    async with rt.engine.begin() as conn:
        records = await opened(rt, conn, await store.every(conn))
        for subject_id in sorted({r.subject_id for r in records}):
            await rt.record_access(
                conn,
                subject_id=subject_id,
                actor=reader,
                purpose=STAFF_READ_PURPOSE,
                fields=GROUND_READ_FIELDS,
                categories=GROUND_READ_CATEGORIES,
            )
    return count(records, by), records


def _where(invocation_id: UUID) -> str:
    return place("ground_invocations", invocation_id)


async def _seal_texts(
    rt: ServiceRuntime, subject_id: str, invocation_id: UUID, texts: dict[str, str | None]
) -> dict[str, Any]:
    return await seal(rt.mapper.cipher, subject_id, _where(invocation_id), texts)


async def opened(
    rt: ServiceRuntime, conn: AsyncConnection, records: Sequence[GroundRecord]
) -> list[GroundRecord]:
    """The records with their evidence and reason opened, for an officer who is shown them
    (`REDACTED` once the subject's key is destroyed). Decisions never need the texts, and
    never open them."""
    stored = {
        s.invocation_id: s for s in await store.texts_of(conn, [r.invocation_id for r in records])
    }
    out: list[GroundRecord] = []
    for record in records:
        texts = stored.get(record.invocation_id)
        if texts is not None and texts.sealed:
            values = await unseal(
                rt.mapper.cipher, texts.subject_id, _where(record.invocation_id), texts.sealed
            )
            record = dataclasses.replace(
                record,
                evidence_reference=str(values.get("evidence_reference") or ""),
                reason=str(values.get("reason") or ""),
            )
        out.append(record)
    return out


async def seal_legacy_ground_texts(
    rt: ServiceRuntime, stop: asyncio.Event, batch: int = 100
) -> None:
    """A worker: seal the evidence and reasons stored in plaintext before sealing
    (consent_0006), then stop; nothing to do once every row is sealed."""
    while not stop.is_set():
        async with rt.engine.begin() as conn:
            rows = await store.with_plaintext_texts(conn, batch)
            for row in rows:
                sealed = await _seal_texts(rt, row.subject_id, row.invocation_id, row.plaintext)
                await store.replace_texts(conn, row.invocation_id, sealed)
        if len(rows) < batch:
            return
