"""Retention against loans' real database (no HTTP; RUL-2, USE-3): a customer with an
application and a loan is erased; what the law makes loans keep stays readable under its
holds after the subject's key is gone, until each hold ends, and is erased then, once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from expensura_events.catalog.identity import EmailOwnershipProven
from expensura_events.catalog.identity_verification import RealNameVerified
from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.catalog.platform import RetentionHoldEnded
from expensura_events.catalog.rights import ErasureConfirmed, ErasureRequested, HeldEntry
from expensura_events.envelope import REDACTED, Actor, EventEnvelope, key_owner, utcnow
from expensura_events.privacy.shredding import held_records
from expensura_events.runtime import ServiceRuntime
from expensura_events.streams import erasure_stream
from expensura_events.vocabulary import Purpose
from expensura_loans.applications.domain import LoanPurpose, LoanTerms, VerificationRequired
from expensura_loans.applications.projection import ProvenEmails, VerifiedSubjects
from expensura_loans.applications.service import applications_of, apply_for_loan
from expensura_loans.retention.domain import (
    RecordClass,
    hold_ends,
    hold_for,
    record_class_of,
)
from expensura_loans.retention.service import release_due_holds
from expensura_loans.risk.domain import PresentedEvidence
from expensura_loans.servicing.service import accept_offer, loans_of, make_offer, pay
from expensura_loans.tables import retention_holds

pytestmark = pytest.mark.obligation("RUL-2", "USE-3")

APPLICATIONS = hold_for(RecordClass.APPLICATION)
ACCOUNT = hold_for(RecordClass.ACCOUNT)
PAYMENTS = hold_for(RecordClass.PAYMENT)


def own_device() -> PresentedEvidence:
    """A device and card of the borrower's own: no risk signal holds the application."""
    return PresentedEvidence(str(uuid.uuid4()), f"fp_{uuid.uuid4().hex}")


async def identity_says(rt: ServiceRuntime, subject: str, *, verified: bool) -> None:
    """What identity's events tell loans: the subject's e-mail proven (and verified)."""

    def event(payload: EmailOwnershipProven | RealNameVerified) -> EventEnvelope:
        return rt.envelope(
            payload,
            stream_id=f"identity-{uuid.uuid4()}",
            subject_id=subject,
            actor=Actor.system("identity"),
            purpose=Purpose.IDENTITY_VERIFICATION,
        )

    async with rt.engine.begin() as conn:
        await ProvenEmails().apply(conn, event(EmailOwnershipProven(method="one-time-code")))
        if verified:
            verification = RealNameVerified(
                request_id=uuid.uuid4(),
                trust_framework="sandbox",
                verified_at=utcnow(),
                verifier="sandbox agency",
                transaction_id="tx-1",
                evidence="[]",
            )
            await VerifiedSubjects().apply(conn, event(verification))


async def borrower(rt: ServiceRuntime) -> str:
    """A customer refused once (not yet verified), then with an application, its offer
    accepted and disbursed, and one payment made."""
    subject = str(uuid.uuid4())
    await identity_says(rt, subject, verified=False)
    with pytest.raises(VerificationRequired):
        await apply_for_loan(
            rt, subject, LoanTerms(120_000, 12), LoanPurpose.OTHER, 500_000, evidence=own_device()
        )
    await identity_says(rt, subject, verified=True)
    await apply_for_loan(
        rt, subject, LoanTerms(120_000, 12), LoanPurpose.OTHER, 500_000, evidence=own_device()
    )
    [application] = await applications_of(rt, subject)
    async with rt.engine.begin() as conn:
        await rt.append(conn, await make_offer(rt, conn, application, utcnow()))
    [offered] = await loans_of(rt, subject)
    await accept_offer(rt, subject, offered.loan_id, offered.disclosure.disclosure_version)
    await pay(rt, subject, offered.loan_id, 15_000, "retention-payment-1")
    return subject


async def erase(rt: ServiceRuntime, subject: str) -> ErasureConfirmed:
    """What identity's erasure does to loans: the subject-lifecycle projection follows
    `rights.ErasureRequested`, then identity destroys the subject's key."""
    request_id = uuid.uuid4()
    request = rt.envelope(
        ErasureRequested(request_id=request_id),
        stream_id=f"cancellation-{request_id}",
        subject_id=subject,
        actor=Actor.system("identity.rights"),
        purpose=Purpose.LEGAL_COMPLIANCE,
    )
    [lifecycle] = [r.projection for r in rt.runners if r.projection.name == "subject-lifecycle"]
    async with rt.engine.begin() as conn:
        await lifecycle.apply(conn, request)
    await rt.keys.destroy(subject)
    async with rt.engine.connect() as conn:
        [confirmed] = await rt.store.read_stream(conn, erasure_stream(request_id))
    assert isinstance(confirmed.payload, ErasureConfirmed)
    return confirmed.payload


async def log_of(rt: ServiceRuntime, subject: str) -> list[EventEnvelope]:
    async with rt.engine.connect() as conn:
        return await rt.store.read_subject(conn, subject)


def by_type(events: list[EventEnvelope], event_type: str) -> EventEnvelope:
    [found] = [e for e in events if e.event_type == event_type]
    return found


async def ends_of(rt: ServiceRuntime, subject: str) -> dict[str, datetime]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(retention_holds.c.hold, retention_holds.c.ends_at).where(
                retention_holds.c.subject_id == subject
            )
        )
        return {r.hold: r.ends_at for r in rows}


async def test_every_loans_record_is_appended_under_the_hold_its_class_demands(
    rt: ServiceRuntime,
) -> None:
    subject = await borrower(rt)
    events = [e for e in await log_of(rt, subject) if e.event_type.startswith("loans.")]
    assert {e.event_type for e in events} == {
        "loans.LoanApplicationRefused",
        "loans.LoanApplicationReceived",
        "loans.LoanOffered",
        "loans.OfferAccepted",
        "loans.LoanDisbursed",
        "loans.PaymentReceived",
        "loans.CustomerNoticeRequested",  # the offer document (held) and the receipt (not)
    }
    for event in events:
        notice = event.payload if isinstance(event.payload, CustomerNoticeRequested) else None
        record_class = record_class_of(event.event_type, notice.kind if notice else None)
        expected = None if record_class is None else hold_for(record_class)
        assert event.retention_hold == expected, (event.event_type, notice)
    kinds = {
        e.payload.kind: e.retention_hold
        for e in events
        if e.payload is not None and isinstance(e.payload, CustomerNoticeRequested)
    }
    assert kinds == {NoticeKind.OFFER: APPLICATIONS, NoticeKind.RECEIPT: None}


async def test_held_records_outlive_the_erasure_until_each_hold_ends_then_are_erased_once(
    rt: ServiceRuntime,
) -> None:
    subject = await borrower(rt)
    before = await log_of(rt, subject)
    erased_from = utcnow()
    confirmed = await erase(rt, subject)

    # The holds, with their end dates, placed in the erasure's transaction and confirmed.
    [offer_document] = [
        e
        for e in before
        if isinstance(e.payload, CustomerNoticeRequested) and e.payload.kind is NoticeKind.OFFER
    ]
    paid = by_type(before, "loans.PaymentReceived")
    ends = await ends_of(rt, subject)
    assert set(ends) == {APPLICATIONS, ACCOUNT, PAYMENTS}
    # The application's latest record starts its clock: the offer document it was answered
    # with (Reg B: the notice of action taken).
    assert ends[APPLICATIONS] == hold_ends(RecordClass.APPLICATION, offer_document.occurred_at)
    assert ends[PAYMENTS] == hold_ends(RecordClass.PAYMENT, paid.occurred_at)
    # A loan still being repaid is no longer serviced once its borrower is erased.
    assert (
        hold_ends(RecordClass.ACCOUNT, erased_from)
        <= ends[ACCOUNT]
        <= hold_ends(RecordClass.ACCOUNT, utcnow())
    )
    assert [HeldEntry.parse(e) for e in confirmed.retained] == [  # by hold name
        HeldEntry(ACCOUNT, 3, ends[ACCOUNT].date()),
        HeldEntry(PAYMENTS, 1, ends[PAYMENTS].date()),
        HeldEntry(APPLICATIONS, 3, ends[APPLICATIONS].date()),
    ]
    assert confirmed.retained[2] == (
        f"reg-b-applications: 3 log records, held until {ends[APPLICATIONS].date().isoformat()}"
    )
    assert confirmed.purged["loan_applications"] == 1 and confirmed.purged["loans"] == 1

    # The subject's key is gone; the held records still read, for legal compliance only.
    assert not await rt.keys.live(subject)
    held = await log_of(rt, subject)
    assert by_type(held, "loans.LoanApplicationReceived").payload.amount_cents == 120_000
    assert by_type(held, "loans.PaymentReceived").payload.amount_cents == 15_000

    # Before the first end, nothing is released.
    first = min(ends.values())
    assert ends[APPLICATIONS] == first
    assert [h for h in await release_due_holds(rt, first - timedelta(seconds=1))] == []
    assert (
        by_type(await log_of(rt, subject), "loans.LoanApplicationReceived").payload.amount_cents
        == 120_000
    )

    # At its end, the application's hold is released: its records read as redacted.
    released = [h for h in await release_due_holds(rt, first) if h.subject_id == subject]
    assert [h.hold for h in released] == [APPLICATIONS]
    assert not await rt.keys.live(key_owner(subject, APPLICATIONS))
    after = await log_of(rt, subject)
    assert by_type(after, "loans.LoanApplicationReceived").payload.amount_cents == REDACTED
    assert by_type(after, "loans.PaymentReceived").payload.amount_cents == 15_000  # still held

    # After every end, the rest; each end recorded once, and running again changes nothing.
    last = max(ends.values()) + timedelta(days=1)
    released = [h for h in await release_due_holds(rt, last) if h.subject_id == subject]
    assert sorted(h.hold for h in released) == sorted([ACCOUNT, PAYMENTS])
    assert [h for h in await release_due_holds(rt, last) if h.subject_id == subject] == []
    final = await log_of(rt, subject)
    assert by_type(final, "loans.PaymentReceived").payload.amount_cents == REDACTED
    ended = [e.payload for e in final if isinstance(e.payload, RetentionHoldEnded)]
    assert sorted(e.hold for e in ended) == sorted([APPLICATIONS, ACCOUNT, PAYMENTS])
    assert all("retention period over" in e.reason for e in ended)
    async with rt.engine.connect() as conn:
        assert await held_records(rt, conn, subject) == {}
        released_at = await conn.execute(
            select(retention_holds.c.released_at).where(retention_holds.c.subject_id == subject)
        )
        assert all(r.released_at is not None for r in released_at)


async def test_a_hold_whose_key_was_destroyed_but_not_marked_released_finishes_once(
    rt: ServiceRuntime,
) -> None:
    """A round that crashed between destroying the hold's key and marking it released: the
    next round finishes it, and the end is recorded once."""
    from expensura_events.privacy.shredding import release_hold

    subject = await borrower(rt)
    await erase(rt, subject)
    ends = await ends_of(rt, subject)
    await release_hold(rt, subject, PAYMENTS, "retention period over")  # … then the crash
    released = [h for h in await release_due_holds(rt, ends[PAYMENTS]) if h.subject_id == subject]
    assert PAYMENTS in [h.hold for h in released]
    ended = [
        e.payload.hold
        for e in await log_of(rt, subject)
        if isinstance(e.payload, RetentionHoldEnded)
    ]
    assert ended.count(PAYMENTS) == 1
