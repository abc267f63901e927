"""Use cases of credit reporting (SHR-4): the monthly furnishing run and its delivery to the
bureau, and bureau disputes (received, investigated by their deadline, answered).

The run is once per month (`furnishing_runs`): the file is built from loans' own records as
of the month's last day, its lines appended as `loans.AccountFurnished` (each sealed with
its borrower's key) and the file's digest and counts as `loans.FurnishingFileProduced`, in
one transaction; delivery is a step of its own, retried until the bureau takes the file
(`loans.FurnishingFileDelivered`). A second run of a month changes nothing.

A dispute is checked against loans' records at once: when the line furnished for the month
is what the records (as they stand now) give for that month, the dispute is answered
automatically, verified as reported. Otherwise (an account we do not know, a line the
records no longer give: a late-recorded payment or missed installment, an earlier
correction) it waits for a privacy officer's answer (`answer_dispute`, a staff route with
MFA; identity has no investigator role, and the answer is the FCRA compliance task the
privacy officer's legal-compliance purpose covers). A correction goes into the next file.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.loans_reporting import (
    BureauDisputeAnswered,
    BureauDisputeReceived,
    FurnishingFileDelivered,
)
from expensura_events.catalog.loans_servicing import (
    LoanChargedOff,
    LoanDisbursed,
    LoanPaidOff,
    PaymentReceived,
)
from expensura_events.db_errors import error_fields
from expensura_events.envelope import REDACTED, Actor, DomainEvent, LegalBasis, utcnow
from expensura_events.privacy.restrictions import permits, restriction
from expensura_events.runtime import ServiceRuntime
from expensura_events.sealing import place, seal, unseal
from expensura_events.vocabulary import LegalGround, Purpose
from expensura_loans.assessment.bureau import (
    BureauDispute,
    BureauRefused,
    BureauUnavailable,
    CreditBureauClient,
)
from expensura_loans.reporting import store
from expensura_loans.reporting.domain import (
    AccountSnapshot,
    Correction,
    DisputeOutcome,
    Furnisher,
    InvalidCorrection,
    LoanHistory,
    PaymentOnRecord,
    ReportedStatus,
    account_number,
    account_snapshot,
    as_furnished,
    base_record,
    furnish,
    investigation_deadline,
    month_end,
    overdue,
    period_of,
    previous_month_end,
    reassembled,
    records_agree,
)
from expensura_loans.retention.service import record_envelope
from expensura_loans.servicing.domain import disclose
from expensura_loans.servicing.service import loan_stream
from expensura_loans.settings import LoansSettings, loans_settings

log = structlog.get_logger("expensura.loans.reporting")

RUN_ACTOR = Actor.system("furnishing-run")
DISPUTES_ACTOR = Actor.system("bureau-disputes")
AUTOMATIC = "automatic: loans' records agree with the line furnished"
# Furnishing is part of the loan the borrower chose (the agreement tells them we report to
# the bureaus, FCRA §623(a)(7)); it is never a sale: there is no such purpose (SHR-4).
FURNISHING_PURPOSE = Purpose.LOAN_SERVICE_PROVISION
FURNISHING_BASIS = LegalBasis(
    ground=LegalGround.CONTRACT_AT_USERS_REQUEST,
    reference="loan agreement: credit reporting (FCRA 623)",
)
# Investigating and answering a dispute is the law's (FCRA §623(b)).
DISPUTE_PURPOSE = Purpose.LEGAL_COMPLIANCE
DISPUTE_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="FCRA 623(b), 15 USC 1681s-2(b)")


class MonthNotOver(ValueError):
    """A month is furnished as of its last day, once that day is past."""


class UnknownDispute(LookupError):
    pass


class AlreadyAnswered(Exception):
    def __init__(self, outcome: str) -> None:
        super().__init__(f"the dispute was answered: {outcome}")
        self.outcome = outcome


@dataclass(frozen=True)
class FurnishingRun:
    period: str
    record_count: int
    status_counts: dict[str, int]
    sha256: str
    produced_at: datetime
    delivered: bool
    bureau_file_id: str | None
    delivery_attempts: int


@dataclass(frozen=True)
class DisputeView:
    dispute_id: str
    account_number: str
    received_at: datetime
    deadline: datetime
    overdue: bool
    records_agree: bool | None
    outcome: str | None
    answered_at: datetime | None


def furnisher(settings: LoansSettings) -> Furnisher:
    return Furnisher(
        identification_number=settings.furnisher_identification_number,
        name=settings.furnisher_name,
        address=settings.furnisher_address,
        telephone=settings.furnisher_telephone,
        program_date=settings.furnisher_program_date,
        # The header's first program identifier (13-22) is where the bureau reads ours.
        innovis_program_identifier=settings.furnisher_program_id,
    )


def file_stream(period: str) -> str:
    return f"furnishing-{period}"


def dispute_stream(dispute_id: str) -> str:
    return f"bureau-dispute-{dispute_id}"


def _line_place(period: str, number: str) -> str:
    return place("furnished_accounts", f"{period}/{number}")


def _dispute_place(dispute_id: str) -> str:
    return place("bureau_disputes", dispute_id)


def _bureau(settings: LoansSettings) -> CreditBureauClient | None:
    if settings.credit_bureau_key is None:
        return None
    return CreditBureauClient(
        settings.credit_bureau_url,
        settings.credit_bureau_subscriber_id,
        settings.credit_bureau_key,
        timeout=settings.credit_bureau_timeout_seconds,
    )


# --- loans' records -------------------------------------------------------------------------


def _redacted(event: DomainEvent) -> bool:
    return REDACTED in event.__dict__.values()


async def _history(
    rt: ServiceRuntime, conn: AsyncConnection, loan: store.FurnishableLoan
) -> LoanHistory | None:
    """The loan's terms (its row) and dated history (its stream); None once its borrower's
    key is destroyed."""
    terms = await unseal(
        rt.mapper.cipher, loan.subject_id, place("loans", loan.loan_id), loan.terms_sealed
    )
    if REDACTED in terms.values():
        return None
    disclosure = disclose(
        int(terms["principal_cents"]),
        Decimal(str(terms["annual_rate"])),
        int(terms["term_months"]),
        date.fromisoformat(str(terms["first_due"])),
        int(terms["fee_cents"]),
    )
    disbursed_on: date | None = None
    payments: list[PaymentOnRecord] = []
    paid_off_on: date | None = None
    charged_off: LoanChargedOff | None = None
    for envelope in await rt.store.read_stream(conn, loan_stream(loan.loan_id)):
        event = envelope.payload
        if isinstance(event, DomainEvent) and _redacted(event):
            return None
        if isinstance(event, LoanDisbursed):
            disbursed_on = event.disbursed_on
        elif isinstance(event, PaymentReceived):
            payments.append(PaymentOnRecord(event.paid_on, event.amount_cents))
        elif isinstance(event, LoanPaidOff):
            paid_off_on = event.paid_off_on
        elif isinstance(event, LoanChargedOff):
            charged_off = event
    return LoanHistory(
        loan_id=loan.loan_id,
        consumer_reference=loan.subject_id,
        principal_cents=disclosure.principal_cents,
        annual_rate=Decimal(str(terms["annual_rate"])),
        schedule=disclosure.payment_schedule,
        disbursed_on=disbursed_on,
        payments=tuple(payments),
        paid_off_on=paid_off_on,
        charged_off_on=None if charged_off is None else charged_off.charged_off_on,
        charged_off_cents=0 if charged_off is None else charged_off.principal_charged_off_cents,
    )


async def _snapshot(
    rt: ServiceRuntime, conn: AsyncConnection, loan: store.FurnishableLoan, as_of: date
) -> AccountSnapshot | None:
    history = await _history(rt, conn, loan)
    return None if history is None else account_snapshot(history, as_of)


def _correction(values: dict[str, Any]) -> Correction:
    dofd = values.get("date_of_first_delinquency")
    return Correction(
        status=ReportedStatus(values["status"]),
        current_balance_cents=int(values["current_balance_cents"]),
        amount_past_due_cents=int(values["amount_past_due_cents"]),
        date_of_first_delinquency=None if dofd in (None, "") else date.fromisoformat(str(dofd)),
    )


# --- the monthly run ------------------------------------------------------------------------


async def run_furnishing(
    rt: ServiceRuntime, month: date, *, today: date | None = None
) -> FurnishingRun:
    """The file of the month `month` falls in, once: built, recorded and then delivered; a
    run of a month already produced only retries its delivery if the bureau has not taken
    it yet, and answers with the first run's result. `today` (default: the clock's) must be
    after the month's last day."""
    as_of = month_end(month)
    period = period_of(as_of)
    if as_of >= (today or utcnow().date()):
        raise MonthNotOver(f"{period} is not over")
    async with rt.engine.connect() as conn:
        existing = await store.run(conn, period)
    if existing is None:
        await _produce(rt, as_of)
    await deliver(rt, period)
    async with rt.engine.connect() as conn:
        done = await store.run(conn, period)
    assert done is not None
    return FurnishingRun(
        period=done.period,
        record_count=done.record_count,
        status_counts=done.status_counts,
        sha256=done.sha256,
        produced_at=done.produced_at,
        delivered=done.delivered_at is not None,
        bureau_file_id=done.bureau_file_id,
        delivery_attempts=done.delivery_attempts,
    )


async def _produce(rt: ServiceRuntime, as_of: date) -> None:
    period = period_of(as_of)
    produced_at = utcnow()
    settings = loans_settings(rt)
    async with rt.engine.begin() as conn:
        accounts: list[AccountSnapshot] = []
        loan_of: dict[str, store.FurnishableLoan] = {}
        for loan in await store.furnishable_loans(conn):
            if not permits(await restriction(conn, loan.subject_id), FURNISHING_PURPOSE):
                continue  # the borrower cancelled: their data is no longer processed (RUL-2)
            snapshot = await _snapshot(rt, conn, loan, as_of)
            if snapshot is not None:
                accounts.append(snapshot)
                loan_of[snapshot.account_number] = loan
        accounts, reported = await _with_disputes(rt, conn, accounts, produced_at)
        furnishing = furnish(furnisher(settings), as_of, accounts, created_on=produced_at.date())
        claimed = await store.claim_run(
            conn,
            period=period,
            header=furnishing.text.split("\n", 1)[0],
            sha256=furnishing.produced.sha256,
            record_count=furnishing.produced.record_count,
            status_counts=furnishing.produced.status_counts,
            at=produced_at,
        )
        if not claimed:
            return  # another run of the month committed first: nothing more to record
        lines = []
        envelopes = []
        for subject, line in furnishing.lines:
            loan = loan_of[line.account_number]
            lines.append(
                store.StoredLine(
                    account_number=line.account_number,
                    loan_id=loan.loan_id,
                    subject_id=subject,
                    record_sealed=await seal(
                        rt.mapper.cipher,
                        subject,
                        _line_place(period, line.account_number),
                        {"record": line.record},
                    ),
                )
            )
            envelopes.append(
                record_envelope(
                    rt,
                    line,
                    stream_id=loan_stream(loan.loan_id),
                    subject_id=subject,
                    actor=RUN_ACTOR,
                    purpose=FURNISHING_PURPOSE,
                    legal_basis=FURNISHING_BASIS,
                )
            )
        envelopes.append(
            record_envelope(
                rt,
                furnishing.produced,
                stream_id=file_stream(period),
                subject_id=None,
                actor=RUN_ACTOR,
                purpose=FURNISHING_PURPOSE,
                legal_basis=FURNISHING_BASIS,
            )
        )
        await store.add_lines(conn, period, lines)
        await store.mark_reported(conn, reported, period)
        await rt.append(conn, envelopes)
    log.info("furnishing.produced", period=period, records=furnishing.produced.record_count)


async def _with_disputes(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    accounts: list[AccountSnapshot],
    produced_at: datetime,
) -> tuple[list[AccountSnapshot], list[str]]:
    """The lines as disputes leave them: an account the bureau deleted on our answer is
    furnished no more (FCRA §623(a)(2): we do not furnish again what we found inaccurate);
    an open dispute is flagged; an answer since the last file is flagged and its correction
    applied. Also the disputes this file reports the answers of."""
    disputes = await store.disputes_of_accounts(conn, [a.account_number for a in accounts])
    by_account: dict[str, list[store.StoredDispute]] = {}
    for d in disputes:
        by_account.setdefault(d.account_number, []).append(d)
    out: list[AccountSnapshot] = []
    reported: list[str] = []
    for account in accounts:
        mine = by_account.get(account.account_number, [])
        if any(d.outcome == DisputeOutcome.DELETED for d in mine):
            continue
        open_dispute = any(d.outcome is None and d.received_at <= produced_at for d in mine)
        answered = [d for d in mine if d.outcome is not None and d.reported_in is None]
        correction = None
        for d in answered:  # the latest correction wins (they are in the order received)
            if d.correction_sealed is not None:
                values = await unseal(
                    rt.mapper.cipher,
                    d.subject_id,
                    _dispute_place(d.dispute_id),
                    d.correction_sealed,
                )
                if REDACTED not in values.values():
                    correction = _correction(values)
        try:
            line = as_furnished(
                account,
                open_dispute=open_dispute,
                answered_since_last_file=bool(answered),
                correction=correction,
            )
        except InvalidCorrection as exc:  # answered for another month's line: records speak
            log.warning("furnishing.correction_not_applicable", error=str(exc))
            line = as_furnished(
                account,
                open_dispute=open_dispute,
                answered_since_last_file=bool(answered),
                correction=None,
            )
        out.append(line)
        reported += [d.dispute_id for d in answered]
    return out, reported


async def deliver(rt: ServiceRuntime, period: str) -> bool:
    """Send a produced month's file to the bureau, unless it took it already. The file is
    re-assembled from its sealed lines (a borrower erased since is left out). A bureau that
    is down or refuses leaves the run produced-not-delivered, the attempt counted: the next
    run tries again. True when the file is delivered."""
    bureau = _bureau(loans_settings(rt))
    async with rt.engine.begin() as conn:
        run = await store.lock_run(conn, period)
        if run is None:
            raise LookupError(f"no run of {period}")
        if run.delivered_at is not None:
            return True
        if bureau is None:
            await store.record_failed_delivery(conn, period, "no credit bureau key configured")
            log.warning("furnishing.not_delivered", period=period, error="no bureau key")
            return False
        records = []
        for line in await store.lines_of(conn, period):
            opened = await unseal(
                rt.mapper.cipher,
                line.subject_id,
                _line_place(period, line.account_number),
                line.record_sealed,
            )
            if opened["record"] != REDACTED:
                records.append(str(opened["record"]))
        text = reassembled(run.header, records)
        try:
            async with bureau:
                receipt = await bureau.furnish(text)
        except (BureauUnavailable, BureauRefused) as exc:
            await store.record_failed_delivery(conn, period, str(exc))
            log.warning("furnishing.not_delivered", period=period, error=str(exc))
            return False
        if receipt.rejected:
            log.error(
                "furnishing.records_rejected",
                period=period,
                lines=[r.line for r in receipt.rejected],
            )
        await store.record_delivery(conn, period, bureau_file_id=receipt.file_id, at=utcnow())
        delivered = FurnishingFileDelivered(period=period, bureau_file_id=receipt.file_id)
        await rt.append(
            conn,
            [
                record_envelope(
                    rt,
                    delivered,
                    stream_id=file_stream(period),
                    subject_id=None,
                    actor=RUN_ACTOR,
                    purpose=FURNISHING_PURPOSE,
                    legal_basis=FURNISHING_BASIS,
                )
            ],
        )
    log.info("furnishing.delivered", period=period, file_id=receipt.file_id)
    return True


async def deliver_pending(rt: ServiceRuntime) -> None:
    async with rt.engine.connect() as conn:
        periods = await store.undelivered_periods(conn)
    for period in periods:
        await deliver(rt, period)


# --- bureau disputes ------------------------------------------------------------------------


async def fetch_disputes(rt: ServiceRuntime) -> list[str]:
    """The bureau's disputes since the last one recorded, each recorded once with its
    deadline, and answered at once where the records agree; then any answer the bureau has
    not acknowledged yet is sent again. The ids of the disputes recorded now."""
    bureau = _bureau(loans_settings(rt))
    if bureau is None:
        return []
    async with rt.engine.connect() as conn:
        cursor = await store.last_dispute_id(conn)
    try:
        async with bureau:
            received = await bureau.disputes(after=cursor)
    except (BureauUnavailable, BureauRefused) as exc:
        log.warning("bureau_disputes.not_fetched", error=str(exc))
        return []
    recorded = [d.dispute_id for d in received if await _receive(rt, d)]
    await send_answers(rt)
    return recorded


async def _rebuilt_line(
    rt: ServiceRuntime, conn: AsyncConnection, loan_id: UUID, period: str
) -> str | None:
    """The account's line for `period` as loans' records give it now."""
    loan = await store.loan_terms(conn, loan_id)
    if loan is None:
        return None
    as_of = month_end(date.fromisoformat(f"{period}-01"))
    snapshot = await _snapshot(rt, conn, loan, as_of)
    if snapshot is None:
        return None
    return base_record(furnisher(loans_settings(rt)), snapshot)


async def _receive(rt: ServiceRuntime, dispute: BureauDispute) -> bool:
    deadline = investigation_deadline(dispute.received_at)
    async with rt.engine.begin() as conn:
        found = await store.last_line(conn, dispute.account_number, dispute.received_at)
        loan_id: UUID | None = None
        subject = dispute.consumer_reference
        agree: bool | None = None
        if found is not None:
            period, line = found
            loan_id, subject = line.loan_id, line.subject_id
            opened = await unseal(
                rt.mapper.cipher,
                subject,
                _line_place(period, line.account_number),
                line.record_sealed,
            )
            rebuilt = await _rebuilt_line(rt, conn, line.loan_id, period)
            agree = (
                opened["record"] != REDACTED
                and rebuilt is not None
                and records_agree(str(opened["record"]), rebuilt)
            )
        added = await store.add_dispute(
            conn,
            dispute_id=dispute.dispute_id,
            account_number=dispute.account_number,
            loan_id=loan_id,
            subject_id=subject,
            reason_sealed=await seal(
                rt.mapper.cipher,
                subject,
                _dispute_place(dispute.dispute_id),
                {"reason": dispute.reason},
            ),
            received_at=dispute.received_at,
            deadline=deadline,
            records_agree=agree,
        )
        if not added:
            return False
        events: list[DomainEvent] = [
            BureauDisputeReceived(
                dispute_id=dispute.dispute_id,
                account_number=dispute.account_number,
                deadline=deadline,
            )
        ]
        if agree:
            outcome = DisputeOutcome.VERIFIED_AS_REPORTED
            await store.record_answer(
                conn,
                dispute.dispute_id,
                outcome=outcome.value,
                correction_sealed=None,
                answered_by=AUTOMATIC,
                at=utcnow(),
            )
            events.append(BureauDisputeAnswered(dispute_id=dispute.dispute_id, outcome=outcome))
        await rt.append(conn, _dispute_envelopes(rt, dispute.dispute_id, subject, events))
    log.info(
        "bureau_dispute.received",
        dispute_id=dispute.dispute_id,
        deadline=deadline.isoformat(),
        answered=bool(agree),
    )
    return True


def _dispute_envelopes(
    rt: ServiceRuntime,
    dispute_id: str,
    subject: str,
    events: list[DomainEvent],
    actor: Actor = DISPUTES_ACTOR,
) -> list[Any]:
    return [
        record_envelope(
            rt,
            event,
            stream_id=dispute_stream(dispute_id),
            subject_id=subject,
            actor=actor,
            purpose=DISPUTE_PURPOSE,
            legal_basis=DISPUTE_BASIS,
        )
        for event in events
    ]


async def answer_dispute(
    rt: ServiceRuntime,
    dispute_id: str,
    outcome: DisputeOutcome,
    actor: Actor,
    correction: Correction | None = None,
) -> DisputeView:
    """An investigator's answer: verified as reported, deleted (the account is furnished no
    more), or modified with the corrected status and amounts, which the next file carries.
    Raises `UnknownDispute`, `AlreadyAnswered` or `InvalidCorrection` (a modification without
    its values, values with another answer, or values that contradict themselves)."""
    if (outcome is DisputeOutcome.MODIFIED) != (correction is not None):
        raise InvalidCorrection("a modification, and only a modification, names corrected values")
    async with rt.engine.begin() as conn:
        found = await store.dispute(conn, dispute_id, lock=True)
        if found is None:
            raise UnknownDispute(dispute_id)
        if found.outcome is not None:
            raise AlreadyAnswered(found.outcome)
        sealed = None
        if correction is not None:
            await _check_correction(rt, conn, found, correction)
            values = {k: (str(v) if v is not None else None) for k, v in asdict(correction).items()}
            sealed = await seal(
                rt.mapper.cipher, found.subject_id, _dispute_place(dispute_id), values
            )
        at = utcnow()
        await store.record_answer(
            conn,
            dispute_id,
            outcome=outcome.value,
            correction_sealed=sealed,
            answered_by=f"{actor.kind.value}:{actor.id}",
            at=at,
        )
        answered = BureauDisputeAnswered(dispute_id=dispute_id, outcome=outcome)
        await rt.append(
            conn, _dispute_envelopes(rt, dispute_id, found.subject_id, [answered], actor)
        )
    await send_answers(rt)
    return _view(found, utcnow(), outcome=outcome.value, answered_at=at)


async def _check_correction(
    rt: ServiceRuntime, conn: AsyncConnection, found: store.StoredDispute, correction: Correction
) -> None:
    """The corrected line must be one a file can carry: checked on the line disputed."""
    if found.loan_id is None:
        raise InvalidCorrection("the dispute names no account of ours: nothing to correct")
    loan = await store.loan_terms(conn, found.loan_id)
    last = await store.last_line(conn, found.account_number, found.received_at)
    if loan is None or last is None:
        raise InvalidCorrection("the account's records are gone: nothing to correct")
    as_of = month_end(date.fromisoformat(f"{last[0]}-01"))
    snapshot = await _snapshot(rt, conn, loan, as_of)
    if snapshot is None:
        raise InvalidCorrection("the account's records are gone: nothing to correct")
    correction.applied_to(snapshot)


_NOTES = {
    DisputeOutcome.VERIFIED_AS_REPORTED.value: "verified as reported against our records",
    DisputeOutcome.MODIFIED.value: "corrected; the correction is in our next monthly file",
    DisputeOutcome.DELETED.value: "deleted; the account will not be furnished again",
}


async def send_answers(rt: ServiceRuntime) -> None:
    """Every answer the bureau has not acknowledged, sent (the bureau takes the same answer
    twice as a retry)."""
    bureau = _bureau(loans_settings(rt))
    if bureau is None:
        return
    async with rt.engine.connect() as conn:
        pending = await store.answers_not_sent(conn)
    if not pending:
        return
    async with bureau:
        for d in pending:
            assert d.outcome is not None
            try:
                await bureau.answer_dispute(
                    d.dispute_id, DisputeOutcome(d.outcome).value, _NOTES[d.outcome]
                )
            except BureauUnavailable as exc:
                log.warning(
                    "bureau_dispute.answer_not_sent", dispute_id=d.dispute_id, error=str(exc)
                )
                return
            except BureauRefused as exc:
                log.error("bureau_dispute.answer_refused", dispute_id=d.dispute_id, error=str(exc))
                continue
            async with rt.engine.begin() as conn:
                await store.record_answer_sent(conn, d.dispute_id, utcnow())


def _view(
    d: store.StoredDispute,
    now: datetime,
    *,
    outcome: str | None = None,
    answered_at: datetime | None = None,
) -> DisputeView:
    outcome = outcome or d.outcome
    return DisputeView(
        dispute_id=d.dispute_id,
        account_number=d.account_number,
        received_at=d.received_at,
        deadline=d.deadline,
        overdue=outcome is None and overdue(d.received_at, now),
        records_agree=d.records_agree,
        outcome=outcome,
        answered_at=answered_at or d.answered_at,
    )


async def open_disputes(rt: ServiceRuntime, now: datetime | None = None) -> list[DisputeView]:
    """Disputes waiting for an answer, the nearest deadline first; `overdue` past it."""
    async with rt.engine.connect() as conn:
        found = await store.open_disputes(conn)
    return [_view(d, now or utcnow()) for d in found]


async def dispute_of(rt: ServiceRuntime, dispute_id: str) -> DisputeView:
    async with rt.engine.connect() as conn:
        found = await store.dispute(conn, dispute_id)
    if found is None:
        raise UnknownDispute(dispute_id)
    return _view(found, utcnow())


async def log_overdue(rt: ServiceRuntime, now: datetime | None = None) -> list[DisputeView]:
    """Each dispute past its deadline unanswered, logged as an error (every cycle)."""
    late = [d for d in await open_disputes(rt, now) if d.overdue]
    for d in late:
        log.error(
            "bureau_dispute.overdue",
            dispute_id=d.dispute_id,
            deadline=d.deadline.isoformat(),
        )
    return late


# --- workers --------------------------------------------------------------------------------


async def furnishing_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    """A worker: once a month is over, its file (the run is once per month, so checking
    every `reporting_interval_seconds` is safe); and any delivery still owed."""
    interval = loans_settings(rt).reporting_interval_seconds
    while not stop.is_set():
        try:
            today = utcnow().date()
            await run_furnishing(rt, previous_month_end(today), today=today)
            await deliver_pending(rt)
        except Exception as exc:  # the database is away: next time
            log.warning("furnishing.run_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def bureau_disputes_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    """A worker: new bureau disputes, answers owed to the bureau, overdue disputes logged."""
    interval = loans_settings(rt).reporting_interval_seconds
    while not stop.is_set():
        try:
            await fetch_disputes(rt)
            await log_overdue(rt)
        except Exception as exc:
            log.warning("bureau_disputes.cycle_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


__all__ = [
    "AlreadyAnswered",
    "DisputeView",
    "FurnishingRun",
    "MonthNotOver",
    "UnknownDispute",
    "account_number",
    "answer_dispute",
    "bureau_disputes_worker",
    "deliver",
    "deliver_pending",
    "dispute_of",
    "fetch_disputes",
    "furnishing_worker",
    "log_overdue",
    "open_disputes",
    "run_furnishing",
]
