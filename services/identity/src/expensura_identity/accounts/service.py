"""Account use cases: sign-up, and the release of contact details to a partner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

from expensura_events.catalog.identity import DataReleaseRefused
from expensura_events.cipher import LOOKUP_HMAC
from expensura_events.contacts import contact_categories, current_contact
from expensura_events.contracts.decisions import ReleaseRequest
from expensura_events.envelope import Actor, LegalBasis
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, DataCategory, LegalGround, Purpose
from expensura_identity.accounts import clients, store
from expensura_identity.accounts.domain import (
    AccountStatus,
    OpenAccount,
    ReleaseRefused,
    account_stream,
    check_release,
    email_lookup,
    open_account,
    releasable,
    release_stream,
)

SIGN_UP = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="sign-up")


@dataclass(frozen=True)
class Opened:
    account_id: UUID
    status: AccountStatus


async def sign_up(rt: ServiceRuntime, email: str, phone: str | None, password: str) -> Opened:
    """The account row and its `AccountOpened` event commit together. Raises
    InvalidAccountDetails, EmailTaken."""
    account_id = uuid4()
    event = open_account(OpenAccount(account_id, email, phone))
    envelope = rt.envelope(
        event,
        stream_id=account_stream(account_id),
        subject_id=str(account_id),
        actor=Actor(kind=ActorKind.USER, id=str(account_id)),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        legal_basis=SIGN_UP,
    )
    password_hash = await rt.passwords.hash(password)  # before the transaction: no lock held
    async with rt.engine.begin() as conn:
        await store.insert(
            conn,
            account_id,
            email_lookup(await rt.secrets.get(LOOKUP_HMAC), email),
            password_hash,
            envelope.occurred_at,
        )
        await rt.append(conn, [envelope], expected_version=0)
    return Opened(account_id, AccountStatus.OPEN)


async def release_contact(
    rt: ServiceRuntime,
    subject_id: str,
    decision_id: UUID,
    recipient: str,
    fields: Sequence[str],
) -> dict[str, str | None]:
    """The subject's current values of the asked-for contact fields, for the recipient of a
    decision consent lets identity redeem now (once, within seconds of it, for exactly this
    subject, recipient and categories, and still allowed); the read is an event whose actor
    is that recipient. A refusal is an event too. Raises ReleaseRefused,
    clients.ConsentUnavailable."""
    wanted = releasable(fields)
    ask = ReleaseRequest(
        subject_id=subject_id,
        recipient=recipient,
        categories=[DataCategory(c) for c in sorted(set(contact_categories(wanted)))]
        or [DataCategory.CONTACT],
        fields=wanted or list(fields)[:1],
    )
    try:
        decision = await clients.redeem(
            rt.settings.service_urls["consent"],
            decision_id,
            ask,
            rt.service_identity.headers_for("consent"),
        )
        check_release(decision, subject_id, recipient)
    except ReleaseRefused as refused:
        await record_refused_release(
            rt,
            subject_id,
            DataReleaseRefused(
                decision_id=str(decision_id),
                recipient=recipient,
                fields=wanted,
                caller="sharing-gateway",
                reason=str(refused)[:300],
            ),
        )
        raise
    async with rt.engine.begin() as conn:
        values = current_contact(await rt.store.read_subject(conn, subject_id)).as_values()
        await rt.record_access(
            conn,
            subject_id=subject_id,
            actor=Actor(kind=ActorKind.PARTNER, id=recipient),
            purpose=decision.purpose,
            fields=wanted,
            categories=contact_categories(wanted),
            legal_basis=decision.basis.legal_basis(),
            decision_id=decision_id,
            decided_at=decision.decided_at,  # the redemption's re-decision
        )
    return {f: values[f] for f in wanted}


async def record_refused_release(
    rt: ServiceRuntime, subject_id: str, refusal: DataReleaseRefused
) -> None:
    """The log shows every release identity refused, whoever asked (SEC-3)."""
    envelope = rt.envelope(
        refusal,
        stream_id=release_stream(subject_id),
        subject_id=subject_id,
        actor=Actor(kind=ActorKind.SYSTEM, id=refusal.caller or "unauthenticated"),
        purpose=Purpose.SECURITY,
    )
    async with rt.engine.begin() as conn:
        await rt.append(conn, [envelope])
