"""Account use cases: sign-up (that tells nobody whether an e-mail has an account), and the
release of contact details to a partner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

from expensura_events.catalog.identity import DataReleaseRefused
from expensura_events.cipher import LOOKUP_HMAC
from expensura_events.contacts import contact_categories, current_contact
from expensura_events.contracts.decisions import ReleaseRequest
from expensura_events.envelope import Actor, LegalBasis
from expensura_events.notifications import Mail
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, DataCategory, LegalGround, Purpose
from expensura_identity.accounts import clients, store
from expensura_identity.accounts.domain import (
    EmailTaken,
    OpenAccount,
    ReleaseRefused,
    account_stream,
    check_release,
    email_lookup,
    open_account,
    releasable,
    release_stream,
)
from expensura_identity.email_proof import service as email_proof

SIGN_UP = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="sign-up")


@dataclass(frozen=True)
class SignUpAnswered:
    """What a sign-up led to, for the caller's eyes only through `mail`: the answer over
    HTTP is the same either way (no enumeration of accounts by e-mail)."""

    mail: Mail  # the first code for a new account, or a notice to the existing owner
    account_id: UUID | None  # None: the e-mail was taken, nothing was created


async def sign_up(
    rt: ServiceRuntime, email: str, phone: str | None, password: str
) -> SignUpAnswered:
    """A new account, its first e-mail-proof code and their events commit together. If the
    e-mail is taken, nothing is created: the owner's record shows the attempt and they are
    mailed a notice. Both paths hash the password and write to the log, so that they take
    about as long. Raises InvalidAccountDetails."""
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
    lookup = email_lookup(await rt.secrets.get(LOOKUP_HMAC), email)
    try:
        async with rt.engine.begin() as conn:
            await store.insert(conn, account_id, lookup, password_hash, envelope.occurred_at)
            proof, mail = await email_proof.issue_with_sign_up(rt, conn, account_id, event.email)
            await rt.append(conn, [envelope], expected_version=0)
            await rt.append(conn, [proof])
        return SignUpAnswered(mail, account_id)
    except EmailTaken:
        pass  # rolled back; the owner is found below, outside the failed transaction
    async with rt.engine.begin() as conn:
        owner = await store.by_email(conn, lookup)
        if owner is not None:
            mail = await email_proof.notice_taken(rt, conn, owner.account_id, event.email)
            return SignUpAnswered(mail, None)
    # Erased between the two transactions: the address is free now.
    return await sign_up(rt, email, phone, password)


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
