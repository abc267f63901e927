"""Legal-ground use cases: invoke or request (the row and its event together), a second
officer's approval or rejection, revoke, and the report of every processing without
consent."""

from __future__ import annotations

from uuid import UUID, uuid4

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


async def invoke_ground(rt: ServiceRuntime, invocation: Invocation, officer: Actor) -> GroundRecord:
    """Record processing without consent: the ground, its evidence, who invoked it and why,
    its scope and its expiry; pending a second officer's approval when it names recipients.
    Raises InvalidInvocation or UnknownRecipients, and then nothing is recorded."""
    invocation_id, now = uuid4(), utcnow()
    event = invoke(invocation_id, invocation, now)
    async with rt.engine.begin() as conn:
        await recipients.ensure_known(conn, set(invocation.recipients))
        await store.insert(
            conn, invocation_id, invocation, officer, now, approval_needed(invocation)
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
    return recorded


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
    return decided


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
    return revoked


async def report(
    rt: ServiceRuntime, by: Grouping, reader: Actor
) -> tuple[dict[str, int], list[GroundRecord]]:
    """Every invocation, oldest first, and their count per ground or per requester. The
    report shows each subject's grounds and evidence to the reader: one
    `platform.PersonalDataAccessed` per subject in it, in the same transaction (SEC-3)."""
    async with rt.engine.begin() as conn:
        records = await store.every(conn)
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
