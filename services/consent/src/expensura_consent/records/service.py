"""Consent record use cases: give or refuse, list, withdraw, expire, and signed receipts.
Each state change commits with its event, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import jwt
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.policy import store as policies
from expensura_consent.recipients import service as recipients
from expensura_consent.records import receipts, store
from expensura_consent.records.domain import (
    ConsentChoice,
    ConsentNotFound,
    ConsentRecord,
    InvalidConsent,
    basis,
    consent_stream,
    expire,
    record_choice,
    validate_new_consent,
    withdraw,
)
from expensura_consent.settings import WORKER
from expensura_consent.tables import receipt_signing_keys
from expensura_events.cipher import TOKEN_KEYS
from expensura_events.envelope import Actor, utcnow
from expensura_events.metrics import CONSENTS_GIVEN, CONSENTS_WITHDRAWN
from expensura_events.runtime import ServiceRuntime
from expensura_events.signing import SigningKeys
from expensura_events.vocabulary import ActorKind, Purpose


@dataclass(frozen=True)
class Receipt:
    token: str
    claims: dict[str, Any]


class InvalidReceipt(ValueError):
    """Not a receipt signed by one of our published keys."""


async def give(rt: ServiceRuntime, subject_id: str, choice: ConsentChoice) -> ConsentRecord:
    """Record the subject's choice with its event. Raises InvalidConsent or
    UnknownRecipients, and then nothing is recorded."""
    now = utcnow()
    validate_new_consent(
        choice.purpose, set(choice.categories), set(choice.recipients), now, choice.expires_at
    )
    record, event = record_choice(uuid4(), subject_id, choice, now)
    async with rt.engine.begin() as conn:
        if not await policies.is_published(conn, choice.policy_version):
            raise InvalidConsent(
                f"policy version {choice.policy_version} was never published "
                "(see GET /v1/policy-versions/current)"
            )
        await recipients.ensure_known(conn, set(choice.recipients))
        await store.insert(conn, record)
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=consent_stream(record.consent_id),
                    subject_id=subject_id,
                    actor=Actor(kind=ActorKind.USER, id=subject_id),
                    purpose=choice.purpose,
                    legal_basis=basis(record.consent_id),
                )
            ],
            expected_version=0,
        )
    if choice.given:  # committed
        CONSENTS_GIVEN.labels(purpose=choice.purpose.value).inc()
    if record.expires_at is not None:  # the worker's next expiry may be this one
        rt.doorbell(WORKER).ring()
    return record


async def consents(rt: ServiceRuntime, subject_id: str) -> list[ConsentRecord]:
    async with rt.engine.connect() as conn:
        return await store.listed(conn, subject_id)


async def withdraw_consent(rt: ServiceRuntime, subject_id: str, consent_id: UUID) -> ConsentRecord:
    """Withdraw the subject's consent. Effective at once: when this returns, no decision
    allows under it (RGT-4). Raises ConsentNotFound, NotActive."""
    async with rt.engine.begin() as conn:
        withdrawn = await withdraw_in(rt, conn, subject_id, consent_id)
    CONSENTS_WITHDRAWN.labels(purpose=withdrawn.purpose.value).inc()  # committed
    return withdrawn


async def withdraw_in(
    rt: ServiceRuntime, conn: AsyncConnection, subject_id: str, consent_id: UUID
) -> ConsentRecord:
    """The withdrawal in the caller's transaction. It locks the record for update, and a
    decision locks the records it relies on for share: a decision that read the record
    first commits before this changes it, and one that comes later waits for this
    transaction and reads the record withdrawn."""
    record = await store.get(conn, consent_id, for_update=True)
    if record is None or record.subject_id != subject_id:
        # another user's consent looks exactly like a missing one
        raise ConsentNotFound(consent_id)
    to, event = withdraw(record)
    if not await store.transition(conn, consent_id, record.status, to, utcnow()):
        raise RuntimeError(f"consent {consent_id} changed under its lock")
    await rt.append(
        conn,
        [
            rt.envelope(
                event,
                stream_id=consent_stream(consent_id),
                subject_id=subject_id,
                actor=Actor(kind=ActorKind.USER, id=subject_id),
                purpose=record.purpose,
                legal_basis=basis(consent_id),
            )
        ],
    )
    found = await store.get(conn, consent_id)
    if found is None:  # locked and changed in this transaction: cannot be gone
        raise RuntimeError(f"consent {consent_id} vanished under its lock")
    return found


async def expire_due(rt: ServiceRuntime) -> int:
    """Records past their expiry become expired, in the table and in the log."""
    now = utcnow()
    async with rt.engine.begin() as conn:
        due = await store.due_to_expire(conn, now)
        for record in due:
            to, event = expire(record)
            await store.transition(conn, record.consent_id, record.status, to, now)
            await rt.append(
                conn,
                [
                    rt.envelope(
                        event,
                        stream_id=consent_stream(record.consent_id),
                        subject_id=record.subject_id,
                        actor=Actor.system("consent"),
                        # bookkeeping of the consent itself, allowed even after a stop
                        purpose=Purpose.LEGAL_COMPLIANCE,
                        legal_basis=basis(record.consent_id),
                    )
                ],
            )
        return len(due)


async def next_expiry(rt: ServiceRuntime) -> datetime | None:
    """When the next record in force expires (None: none will): the worker's next round."""
    async with rt.engine.connect() as conn:
        return await store.next_expiry(conn)


async def receipt_keys(rt: ServiceRuntime) -> SigningKeys:
    """Private halves wrapped by consent's token-keys secret from the key store (it
    survives a master-key rotation, as the gateway's and identity's do)."""
    return SigningKeys(
        rt.engine,
        await rt.secrets.key_wrap(TOKEN_KEYS),
        receipt_signing_keys,
        usage="consent-receipt",
    )


async def receipt(rt: ServiceRuntime, subject_id: str, consent_id: UUID) -> Receipt:
    """A signed receipt of the subject's consent and its history. Raises ConsentNotFound."""
    async with rt.engine.connect() as conn:
        record = await store.get(conn, consent_id)
        if record is None or record.subject_id != subject_id:
            raise ConsentNotFound(consent_id)
        events = await rt.store.read_stream(conn, consent_stream(consent_id))
    history = [
        {"event": e.event_type.split(".")[-1], "at": e.occurred_at.isoformat()} for e in events
    ]
    claims = receipts.receipt_claims(record, history)
    return Receipt(receipts.sign(claims, await (await receipt_keys(rt)).active()), claims)


async def public_keys(rt: ServiceRuntime) -> dict[str, Any]:
    return await (await receipt_keys(rt)).jwks()


async def verify_receipt(rt: ServiceRuntime, token: str) -> dict[str, Any]:
    """The receipt's claims if one of our published keys signed it; raises InvalidReceipt."""
    try:
        return receipts.verify(token, await public_keys(rt))
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidReceipt(str(exc) or type(exc).__name__) from None
