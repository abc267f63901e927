"""E-mail proof use cases: a code issued with the sign-up, a new one on request, and the
code presented back. Each state change commits with its event; a refused code commits its
attempt and refusal before the caller hears of it (guessing is counted and shows in the
log). Mail leaves after the commit, through the shared sender (expensura_events.notifications):
a lost message costs a new code, never an account half made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity import SignUpWithTakenEmail
from expensura_events.cipher import LOOKUP_HMAC
from expensura_events.contacts import contact_categories, current_contact
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, LegalBasis, utcnow
from expensura_events.notifications import Mail, MailSender
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, LegalGround, Purpose
from expensura_identity.accounts.domain import account_stream
from expensura_identity.email_proof import store
from expensura_identity.email_proof.domain import (
    CODE_TTL,
    CodeRefused,
    after_attempt,
    check,
    code_hash,
    issue,
    new_code,
)

BASIS = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="sign-up")


def proof_stream(account_id: UUID | str) -> str:
    """An account's e-mail proof: codes issued, refused, and the proof."""
    return f"email-proof-{account_id}"


def sender(rt: ServiceRuntime) -> MailSender:
    return MailSender(rt.settings.smtp_url, rt.settings.mail_from)


def _envelope(
    rt: ServiceRuntime, account_id: UUID, payload: DomainEvent, purpose: Purpose
) -> EventEnvelope:
    return rt.envelope(
        payload,
        stream_id=proof_stream(account_id),
        subject_id=str(account_id),
        actor=Actor(kind=ActorKind.USER, id=str(account_id)),
        purpose=purpose,
        legal_basis=BASIS,
    )


def code_mail(to: str, code: str) -> Mail:
    minutes = int(CODE_TTL.total_seconds() // 60)
    return Mail(
        to=to,
        subject="Your Expensura confirmation code",
        body=(
            f"Your confirmation code is {code}\n\n"
            f"Enter it in the Expensura app within {minutes} minutes to confirm that this "
            "address is yours. It works once.\n\n"
            "If you did not open an Expensura account, ignore this message: without the "
            "code, the account can do nothing in your name.\n"
        ),
        kind="email-proof-code",
    )


def taken_mail(to: str) -> Mail:
    return Mail(
        to=to,
        subject="Someone tried to open an Expensura account with your address",
        body=(
            "Someone, perhaps you, asked to open an Expensura account with this address. "
            "You already have one, so nothing was created.\n\n"
            "If it was you: sign in with your password instead.\n"
            "If it was not you: you need not do anything. Nobody learned from us that you "
            "have an account.\n"
        ),
        kind="sign-up-email-taken",
    )


async def issue_with_sign_up(
    rt: ServiceRuntime, conn: AsyncConnection, account_id: UUID, email: str
) -> tuple[EventEnvelope, Mail]:
    """In the sign-up's transaction: the new account's first code, its event, its mail."""
    code = new_code()
    hashed = code_hash(await rt.secrets.get(LOOKUP_HMAC), account_id, code)
    issued, event = issue(account_id, hashed, utcnow(), last=None, proven=False)
    await store.put_code(conn, issued)
    return _envelope(rt, account_id, event, Purpose.ACCOUNT_MANAGEMENT), code_mail(email, code)


async def notice_taken(
    rt: ServiceRuntime, conn: AsyncConnection, owner_id: UUID, email: str
) -> Mail:
    """In its own transaction: a sign-up with the owner's e-mail is on the owner's record
    (SEC-3: an attempt on their address shows), and they get a notice."""
    await rt.append(
        conn,
        [
            rt.envelope(
                SignUpWithTakenEmail(),
                stream_id=account_stream(owner_id),
                subject_id=str(owner_id),
                actor=Actor(kind=ActorKind.SYSTEM, id="unauthenticated"),
                purpose=Purpose.SECURITY,
            )
        ],
    )
    return taken_mail(email)


async def new_code_for(rt: ServiceRuntime, account_id: UUID) -> Mail:
    """A new code for the signed-in holder, mailed to the account's current e-mail.
    Raises AlreadyProven, TooSoon."""
    now = utcnow()
    code = new_code()
    hashed = code_hash(await rt.secrets.get(LOOKUP_HMAC), account_id, code)
    async with rt.engine.begin() as conn:
        issued, event = issue(
            account_id,
            hashed,
            now,
            last=await store.live_code(conn, account_id),
            proven=await store.proven_at(conn, account_id, lock=True) is not None,
        )
        await rt.record_access(
            conn,
            subject_id=str(account_id),
            actor=Actor(kind=ActorKind.USER, id=str(account_id)),
            purpose=Purpose.ACCOUNT_MANAGEMENT,
            fields=["email"],
            categories=contact_categories(["email"]),
        )
        contact = current_contact(await rt.store.read_subject(conn, str(account_id)))
        if contact.email is None:  # erased meanwhile: nothing to mail
            raise CodeRefused("the account has no e-mail")
        await store.put_code(conn, issued)
        await rt.append(conn, [_envelope(rt, account_id, event, Purpose.ACCOUNT_MANAGEMENT)])
    return code_mail(contact.email.value, code)


@dataclass(frozen=True)
class Proof:
    proven_at: datetime | None


async def prove(rt: ServiceRuntime, account_id: UUID, code: str) -> Proof:
    """The e-mail proven by the code, once. Raises CodeRefused after recording the attempt
    and the refusal."""
    hashed = code_hash(await rt.secrets.get(LOOKUP_HMAC), account_id, code)
    refused: CodeRefused | None = None
    async with rt.engine.begin() as conn:
        now = utcnow()
        issued = await store.live_code(conn, account_id)
        try:
            proof = check(issued, hashed, now)
        except CodeRefused as exc:
            refused = exc
            if issued is not None:
                await store.put_code(conn, after_attempt(issued, now, proven=False))
            await rt.append(conn, [_envelope(rt, account_id, exc.event(), Purpose.SECURITY)])
        else:
            assert issued is not None  # check() refuses a missing code
            await store.put_code(conn, after_attempt(issued, now, proven=True))
            await store.set_proven(conn, account_id, now)
            await rt.append(conn, [_envelope(rt, account_id, proof, Purpose.ACCOUNT_MANAGEMENT)])
    if refused is not None:
        raise refused
    return Proof(proven_at=now)


async def status(rt: ServiceRuntime, account_id: UUID) -> Proof:
    async with rt.engine.connect() as conn:
        return Proof(proven_at=await store.proven_at(conn, account_id))
