"""Use cases of servicing (USE-3): the offer made on an approved application, its acceptance
(and the disbursement that follows), and payments. One transaction each, the loan's row
locked, its state and its events together.

An offer is priced at one rate for every approved applicant (`OFFER_ANNUAL_RATE`, the rate
the assessment tests affordability at) with no fee; the first payment falls due a month
after the decision. Terms and balances are stored sealed with the borrower's key (SEC-1).
A payment carries the client's idempotency key: a retry with the same key, however many at
once, is answered with the first one's result and applies nothing again.

Loan communications (USE-10, `notices.py`): each notice is requested
(`loans.CustomerNoticeRequested`) in the transaction of the event it tells of, on the loan's
stream: the offer document with the offer, a receipt with each payment applied, a late notice
with each installment missed, and a reminder before each due date from the servicing cycle.

A balance dispute (USE-8) opens a case, `loans.BalanceDisputeOpened`, whose reference the
sharing gateway learns as the case of this borrower's dispute-resolution disclosures.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.loans_servicing import LoanOffered
from expensura_events.db_errors import error_fields
from expensura_events.envelope import (
    REDACTED,
    Actor,
    DomainEvent,
    EventEnvelope,
    LegalBasis,
    utcnow,
)
from expensura_events.runtime import ServiceRuntime
from expensura_events.sealing import place, seal, unseal
from expensura_events.vocabulary import ActorKind, LegalGround, Purpose
from expensura_loans.applications.domain import BASIS, LoanApplication
from expensura_loans.assessment.domain import ASSESSMENT_ANNUAL_RATE
from expensura_loans.retention.service import record_envelope
from expensura_loans.risk import service as risk
from expensura_loans.risk.domain import ReviewStage
from expensura_loans.servicing import notices, store
from expensura_loans.servicing.domain import (
    CHARGE_OFF_DAYS_PAST_DUE,
    IllegalTransition,
    LoanAction,
    LoanBalance,
    LoanState,
    TruthInLendingDisclosure,
    accept,
    add_months,
    charge_off,
    close,
    days_past_due,
    disburse,
    disclose,
    miss_payment,
    offer,
    open_dispute,
    receive_payment,
)
from expensura_loans.settings import loans_settings

log = structlog.get_logger("expensura.loans.servicing")

OFFER_ANNUAL_RATE = ASSESSMENT_ANNUAL_RATE
ORIGINATION_FEE_CENTS = 0
PURPOSE = Purpose.LOAN_SERVICE_PROVISION
REPAYING = frozenset({LoanState.ACTIVE, LoanState.DELINQUENT})
# Notices are communications (USE-10). The offer's disclosure is one the law requires before
# consummation (Reg Z §1026.17(b)); the others serve the contract the borrower asked for.
NOTICE_PURPOSE = Purpose.COMMUNICATION
OFFER_NOTICE_BASIS = LegalBasis(
    ground=LegalGround.OTHER_LAW, reference="TILA Reg Z 12 CFR 1026.17-1026.18"
)
# The borrower asks for the dispute: it is handled at their request.
DISPUTE_BASIS = LegalBasis(
    ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="balance dispute"
)


class UnknownLoan(LookupError):
    """Not the caller's loan (or no longer readable: its borrower was erased)."""


@dataclass(frozen=True)
class LoanView:
    loan_id: UUID
    application_id: UUID
    state: LoanState
    disclosure: TruthInLendingDisclosure
    balance: LoanBalance | None
    paid_cents: int
    missed_through: int = 0  # the last installment recorded as missed (once each)
    reminded_through: int = 0  # the last installment reminded of before its due date

    def payoff_cents(self, on: date) -> int | None:
        return None if self.balance is None else self.balance.payoff_cents(on)


@dataclass(frozen=True)
class PaymentResult:
    loan: LoanView
    to_fees_cents: int
    to_interest_cents: int
    to_principal_cents: int
    replayed: bool  # a retry: the first payment with this key, applied then


def _where(loan_id: UUID) -> str:
    return place("loans", loan_id)


def _terms(disclosure_inputs: dict[str, Any]) -> TruthInLendingDisclosure:
    return disclose(
        int(disclosure_inputs["principal_cents"]),
        Decimal(str(disclosure_inputs["annual_rate"])),
        int(disclosure_inputs["term_months"]),
        date.fromisoformat(str(disclosure_inputs["first_due"])),
        int(disclosure_inputs["fee_cents"]),
    )


async def make_offer(
    rt: ServiceRuntime, conn: AsyncConnection, application: LoanApplication, decided_at: datetime
) -> list[EventEnvelope]:
    """The offer on an approved application, in the assessment's transaction: the loan's row
    and `loans.LoanOffered` (the envelope, for the caller to append with its own)."""
    loan_id = uuid5(NAMESPACE_URL, f"loan:{application.application_id}")
    inputs = {
        "principal_cents": application.terms.amount_cents,
        "annual_rate": str(OFFER_ANNUAL_RATE),
        "term_months": application.terms.term_months,
        "first_due": add_months(decided_at.date(), 1).isoformat(),
        "fee_cents": ORIGINATION_FEE_CENTS,
    }
    disclosure = _terms(inputs)
    step = offer(loan_id, application.application_id, disclosure)
    document = notices.offer_document(loan_id, disclosure, decided_at.date())
    subject = application.subject_id
    await store.add_loan(
        conn,
        loan_id=loan_id,
        application_id=application.application_id,
        subject_id=subject,
        state=step.state.value,
        terms_sealed=await seal(rt.mapper.cipher, subject, _where(loan_id), inputs),
        at=decided_at,
    )
    return [
        record_envelope(
            rt,
            event,
            stream_id=loan_stream(loan_id),
            subject_id=subject,
            actor=Actor(kind=ActorKind.USER, id=subject),
            purpose=PURPOSE,
            legal_basis=BASIS,
        )
        for event in step.events
    ] + _notice_envelopes(
        rt,
        subject,
        loan_id,
        [document.requested(notices.offer_notice_id(loan_id))],
        Actor(kind=ActorKind.USER, id=subject),
        OFFER_NOTICE_BASIS,
    )


def _notice_envelopes(
    rt: ServiceRuntime,
    subject: str,
    loan_id: UUID,
    requests: list[DomainEvent],
    actor: Actor,
    basis: LegalBasis = BASIS,
) -> list[EventEnvelope]:
    """The notices to send, on the loan's stream, as communications."""
    return [
        record_envelope(
            rt,
            request,
            stream_id=loan_stream(loan_id),
            subject_id=subject,
            actor=actor,
            purpose=NOTICE_PURPOSE,
            legal_basis=basis,
        )
        for request in requests
    ]


def loan_stream(loan_id: UUID) -> str:
    return f"loan-{loan_id}"


async def loans_of(rt: ServiceRuntime, subject_id: str) -> list[LoanView]:
    async with rt.engine.connect() as conn:
        stored = await store.loans_of(conn, subject_id)
    return [view for row in stored if (view := await _opened(rt, row)) is not None]


async def _opened(rt: ServiceRuntime, row: store.StoredLoan) -> LoanView | None:
    where = _where(row.loan_id)
    inputs = await unseal(rt.mapper.cipher, row.subject_id, where, row.terms_sealed)
    if REDACTED in inputs.values():
        return None
    balance, paid, missed_through, reminded_through = None, 0, 0, 0
    if row.balance_sealed is not None:
        opened = await unseal(rt.mapper.cipher, row.subject_id, where, row.balance_sealed)
        if REDACTED in opened.values():
            return None
        balance = LoanBalance(
            principal_cents=int(opened["principal_cents"]),
            annual_rate=Decimal(str(inputs["annual_rate"])),
            accrued_through=date.fromisoformat(str(opened["accrued_through"])),
            accrued_interest_cents=int(opened["accrued_interest_cents"]),
            fees_cents=int(opened["fees_cents"]),
        )
        paid = int(opened["paid_cents"])
        missed_through = int(opened.get("missed_through") or 0)
        reminded_through = int(opened.get("reminded_through") or 0)
    return LoanView(
        row.loan_id,
        row.application_id,
        LoanState(row.state),
        _terms(inputs),
        balance,
        paid,
        missed_through,
        reminded_through,
    )


async def _seal_balance(
    rt: ServiceRuntime,
    subject: str,
    loan_id: UUID,
    balance: LoanBalance,
    paid: int,
    missed_through: int = 0,
    reminded_through: int = 0,
) -> dict[str, Any]:
    return await seal(
        rt.mapper.cipher,
        subject,
        _where(loan_id),
        {
            "principal_cents": balance.principal_cents,
            "accrued_through": balance.accrued_through.isoformat(),
            "accrued_interest_cents": balance.accrued_interest_cents,
            "fees_cents": balance.fees_cents,
            "paid_cents": paid,
            "missed_through": missed_through,
            "reminded_through": reminded_through,
        },
    )


async def _locked(
    rt: ServiceRuntime, conn: AsyncConnection, subject_id: str, loan_id: UUID
) -> LoanView:
    row = await store.loan(conn, loan_id, lock=True)
    if row is None or row.subject_id != subject_id:
        raise UnknownLoan(str(loan_id))
    view = await _opened(rt, row)
    if view is None:
        raise UnknownLoan(str(loan_id))
    return view


def _envelopes(
    rt: ServiceRuntime,
    subject: str,
    loan_id: UUID,
    events: tuple[Any, ...],
    actor: Actor | None = None,
) -> list[EventEnvelope]:
    basis: LegalBasis = BASIS
    return [
        record_envelope(
            rt,
            event,
            stream_id=loan_stream(loan_id),
            subject_id=subject,
            actor=actor or Actor(kind=ActorKind.USER, id=subject),
            purpose=PURPOSE,
            legal_basis=basis,
        )
        for event in events
    ]


async def accept_offer(
    rt: ServiceRuntime, subject_id: str, loan_id: UUID, disclosure_version: str
) -> LoanView:
    """The borrower accepts the offer as the disclosure of this version showed it; the amount
    financed is disbursed to them at once. Raises `DisclosureNotShown` (another version),
    `IllegalTransition` (not an open offer) or `UnknownLoan`; `HeldForReview` (USE-6) while
    a risk review is open, or when the payout is held now (the hold committed, the loan
    unchanged), and `RefusedAfterReview` after a confirmed fraud."""
    today = utcnow().date()
    async with rt.engine.begin() as conn:
        view = await _locked(rt, conn, subject_id, loan_id)
        await risk.ensure_not_held(conn, view.application_id)
        [offered] = offer(loan_id, view.application_id, view.disclosure).events
        assert isinstance(offered, LoanOffered)  # the offer as it was made (its terms stored)
        accepted = accept(view.state, offered, disclosure_version)
        # USE-6: the payout's own signals, in this transaction, before anything is paid.
        hold = await risk.screen_disbursement(
            rt,
            conn,
            application_id=view.application_id,
            loan_id=loan_id,
            subject_id=subject_id,
            at=utcnow(),
        )
        if hold:
            # The hold commits; the loan stays an open offer (refused below, after commit).
            await rt.append(conn, hold)
        else:
            disbursed = disburse(accepted.state, loan_id, view.disclosure, today)
            balance = LoanBalance(
                principal_cents=view.disclosure.principal_cents,
                annual_rate=Decimal(str(OFFER_ANNUAL_RATE)),
                accrued_through=today,
            )
            await store.update_loan(
                conn,
                loan_id,
                state=disbursed.state.value,
                balance_sealed=await _seal_balance(rt, subject_id, loan_id, balance, 0),
                at=utcnow(),
            )
            await rt.append(
                conn,
                _envelopes(rt, subject_id, loan_id, (*accepted.events, *disbursed.events)),
            )
    if hold:
        raise risk.HeldForReview(view.application_id, ReviewStage.DISBURSEMENT)
    return replace(view, state=disbursed.state, balance=balance)


async def pay(
    rt: ServiceRuntime, subject_id: str, loan_id: UUID, amount_cents: int, idempotency_key: str
) -> PaymentResult:
    """Apply a payment once per idempotency key (fees, interest to today, principal); a
    payment of the whole payoff pays the loan off and closes it. Raises `Overpayment`,
    `IllegalTransition` (a loan not being repaid) or `UnknownLoan`."""
    today = utcnow().date()
    async with rt.engine.begin() as conn:
        view = await _locked(rt, conn, subject_id, loan_id)
        earlier = await store.payment(conn, loan_id, idempotency_key)
        if earlier is not None:
            applied = await unseal(rt.mapper.cipher, subject_id, _where(loan_id), earlier)
            return PaymentResult(
                view,
                int(applied["to_fees_cents"]),
                int(applied["to_interest_cents"]),
                int(applied["to_principal_cents"]),
                replayed=True,
            )
        if view.balance is None or view.state not in REPAYING:
            raise IllegalTransition(view.state, LoanAction.PAY, "the loan is not being repaid")
        outcome = receive_payment(
            view.state,
            loan_id,
            view.balance,
            view.disclosure.payment_schedule,
            view.paid_cents,
            amount_cents,
            today,
            idempotency_key,
        )
        events = list(outcome.step.events)
        state = outcome.step.state
        if state is LoanState.PAID_OFF:
            closed = close(state, loan_id, today)
            events += closed.events
            state = closed.state
        paid = view.paid_cents + amount_cents
        application = outcome.application
        balance = application.balance_after
        parts = {
            "to_fees_cents": application.to_fees_cents,
            "to_interest_cents": application.to_interest_cents,
            "to_principal_cents": application.to_principal_cents,
        }
        await store.add_payment(
            conn,
            loan_id=loan_id,
            idempotency_key=idempotency_key,
            subject_id=subject_id,
            applied_sealed=await seal(rt.mapper.cipher, subject_id, _where(loan_id), parts),
            at=utcnow(),
        )
        await store.update_loan(
            conn,
            loan_id,
            state=state.value,
            balance_sealed=await _seal_balance(
                rt, subject_id, loan_id, balance, paid, view.missed_through, view.reminded_through
            ),
            at=utcnow(),
        )
        receipt = notices.payment_receipt(
            loan_id,
            amount_cents,
            application.to_fees_cents,
            application.to_interest_cents,
            application.to_principal_cents,
            today,
            balance.principal_cents,
            paid_off=application.paid_off,
        ).requested(notices.receipt_notice_id(loan_id, idempotency_key))
        borrower = Actor(kind=ActorKind.USER, id=subject_id)
        await rt.append(
            conn,
            _envelopes(rt, subject_id, loan_id, tuple(events))
            + _notice_envelopes(rt, subject_id, loan_id, [receipt], borrower),
        )
    return PaymentResult(
        replace(view, state=state, balance=balance, paid_cents=paid),
        application.to_fees_cents,
        application.to_interest_cents,
        application.to_principal_cents,
        replayed=False,
    )


# --- the servicing cycle: missed installments, delinquency, charge-off --------------------------

CYCLE_ACTOR = Actor.system("servicing-cycle")


@dataclass(frozen=True)
class CycleReport:
    missed: int = 0
    became_delinquent: int = 0
    charged_off: int = 0
    notices: int = 0  # late notices and payment-due reminders requested

    def __add__(self, other: CycleReport) -> CycleReport:
        return CycleReport(
            self.missed + other.missed,
            self.became_delinquent + other.became_delinquent,
            self.charged_off + other.charged_off,
            self.notices + other.notices,
        )


async def run_servicing_cycle(rt: ServiceRuntime, today: date) -> CycleReport:
    """As of `today`, for each loan being repaid: every installment unpaid after its due date
    is recorded missed, once (the first makes the loan delinquent, with its bucket), and its
    late notice requested; a loan `CHARGE_OFF_DAYS_PAST_DUE` days or more past due is charged
    off; an installment due within the reminder's lead time is reminded of, once. Each loan
    in a transaction of its own, its row locked (a payment meanwhile waits, or comes first)."""
    async with rt.engine.connect() as conn:
        ids = await store.loan_ids_in_states(conn, sorted(s.value for s in REPAYING))
    lead_days = loans_settings(rt).payment_due_reminder_days
    report = CycleReport()
    for loan_id in ids:
        report += await _service_one(rt, loan_id, today, lead_days)
    return report


async def _service_one(
    rt: ServiceRuntime, loan_id: UUID, today: date, lead_days: int
) -> CycleReport:
    async with rt.engine.begin() as conn:
        row = await store.loan(conn, loan_id, lock=True)
        view = None if row is None else await _opened(rt, row)
        if row is None or view is None or view.balance is None or view.state not in REPAYING:
            return CycleReport()  # paid off, erased or charged off since it was listed
        schedule = view.disclosure.payment_schedule
        state, missed_through = view.state, view.missed_through
        events: list[DomainEvent] = []
        requests: list[DomainEvent] = []
        due_so_far = 0
        past_due = notices.past_due_cents(schedule, view.paid_cents, today)
        for installment in sorted(schedule, key=lambda p: p.number):
            due_so_far += installment.amount_cents
            if installment.number <= missed_through:
                continue  # recorded before
            if installment.due_date >= today or due_so_far <= view.paid_cents:
                continue  # not yet due, or paid
            step = miss_payment(state, loan_id, installment, today)
            state, missed_through = step.state, installment.number
            events += step.events
            late = notices.late_notice(loan_id, installment, past_due, today)
            requests.append(late.requested(notices.late_notice_id(loan_id, installment.number)))
        behind = days_past_due(schedule, view.paid_cents, today)
        if state is LoanState.DELINQUENT and behind >= CHARGE_OFF_DAYS_PAST_DUE:
            step = charge_off(state, loan_id, view.balance, behind, today)
            state = step.state
            events += step.events
        reminded_through = view.reminded_through
        if state in REPAYING:  # a charged-off loan is no longer billed
            for installment in notices.reminders_due(
                schedule, reminded_through, view.paid_cents, today, lead_days
            ):
                reminder = notices.payment_due_reminder(loan_id, installment, today)
                requests.append(
                    reminder.requested(notices.payment_due_notice_id(loan_id, installment.number))
                )
                reminded_through = installment.number
        if not events and not requests:
            return CycleReport()
        await store.update_loan(
            conn,
            loan_id,
            state=state.value,
            balance_sealed=await _seal_balance(
                rt,
                row.subject_id,
                loan_id,
                view.balance,
                view.paid_cents,
                missed_through,
                reminded_through,
            ),
            at=utcnow(),
        )
        await rt.append(
            conn,
            _envelopes(rt, row.subject_id, loan_id, tuple(events), actor=CYCLE_ACTOR)
            + _notice_envelopes(rt, row.subject_id, loan_id, requests, CYCLE_ACTOR),
        )
    kinds = [type(e).__name__ for e in events]
    return CycleReport(
        kinds.count("PaymentMissed"),
        kinds.count("LoanBecameDelinquent"),
        kinds.count("LoanChargedOff"),
        len(requests),
    )


async def servicing_cycle(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    """A worker: the servicing cycle as of today, every `servicing_interval_seconds`."""
    interval = loans_settings(rt).servicing_interval_seconds
    while not stop.is_set():
        try:
            report = await run_servicing_cycle(rt, utcnow().date())
            if report != CycleReport():
                log.info("servicing.cycle", **asdict(report))
        except Exception as exc:  # the database is away: next time
            log.warning("servicing.cycle_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


# --- balance disputes (USE-8) ------------------------------------------------------------------


@dataclass(frozen=True)
class DisputeOpened:
    loan_id: UUID
    case_reference: str


def new_case_reference() -> str:
    """Random (64 bits): a case cannot be named by guessing, and names no one."""
    return f"LD-{secrets.token_hex(8).upper()}"


async def dispute_balance(
    rt: ServiceRuntime, subject_id: str, loan_id: UUID, reason: str
) -> DisputeOpened:
    """The borrower disputes their loan's balance: a case is opened (its reason sealed with
    their key). Raises `NotDisputable` (an offer: no balance yet) or `UnknownLoan`."""
    async with rt.engine.begin() as conn:
        view = await _locked(rt, conn, subject_id, loan_id)
        opened = open_dispute(view.state, loan_id, new_case_reference(), reason)
        await rt.append(
            conn,
            [
                record_envelope(
                    rt,
                    opened,
                    stream_id=loan_stream(loan_id),
                    subject_id=subject_id,
                    actor=Actor(kind=ActorKind.USER, id=subject_id),
                    purpose=Purpose.DISPUTE_RESOLUTION,
                    legal_basis=DISPUTE_BASIS,
                )
            ],
        )
    return DisputeOpened(loan_id, opened.case_reference)
