"""Credit reporting against loans' real database and the sandbox bureau as a real server
(SHR-4): a month furnished once, its delivery retried after the bureau was down, and bureau
disputes from receipt to answer to the next month's file.

Loans here are disbursed today; a test furnishes months still to come, with the day of the
run (`today`) given, each test months of its own (a month's file is made once, and holds
every loan of this module's namespace)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import event_log
from expensura_events.vocabulary import ActorKind
from expensura_loans.applications.domain import LoanApplication, LoanPurpose, LoanTerms
from expensura_loans.assessment.bureau import BureauRefused, CreditBureauClient
from expensura_loans.reporting.domain import (
    Correction,
    DisputeOutcome,
    InvalidCorrection,
    ReportedStatus,
    account_number,
    month_end,
    period_of,
)
from expensura_loans.reporting.service import (
    AlreadyAnswered,
    MonthNotOver,
    answer_dispute,
    deliver_pending,
    dispute_of,
    fetch_disputes,
    file_stream,
    log_overdue,
    open_disputes,
    run_furnishing,
)
from expensura_loans.servicing.service import (
    LoanView,
    accept_offer,
    loan_stream,
    loans_of,
    make_offer,
    pay,
)
from expensura_loans.settings import loans_settings
from expensura_ops.sandboxes import CREDIT_BUREAU_APP
from expensura_ops.testing.sandbox import sandbox_server

pytestmark = pytest.mark.obligation("SHR-4")

KEY = "loans-reporting-key-" + uuid.uuid4().hex[:8]
OFFICER = Actor(kind=ActorKind.STAFF, id="officer-1", role="privacy-officer")


@pytest.fixture(scope="module")
def bureau_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("bureau") / "bureau.log"
    with sandbox_server(CREDIT_BUREAU_APP, log, {"EXPENSURA_BUREAU_SUBSCRIBER_KEY": KEY}) as url:
        yield url


@pytest.fixture(scope="module")
def reporting(rt: ServiceRuntime, bureau_url: str) -> ServiceRuntime:
    """Loans' runtime, its credit bureau the sandbox of this module."""
    settings = loans_settings(rt)
    settings.credit_bureau_url = bureau_url
    settings.credit_bureau_key = KEY
    return rt


def month(ahead: int) -> date:
    """The first day of the month `ahead` months after this one."""
    first = utcnow().date().replace(day=1)
    year, month0 = divmod(first.year * 12 + first.month - 1 + ahead, 12)
    return date(year, month0 + 1, 1)


async def furnish(rt: ServiceRuntime, ahead: int) -> Any:
    """The file of the month `ahead` months on, run the day after that month ends."""
    return await run_furnishing(rt, month(ahead), today=month(ahead + 1))


async def active_loan(rt: ServiceRuntime) -> tuple[str, LoanView]:
    """An approved application's offer, accepted (and so disbursed) today."""
    subject = str(uuid.uuid4())
    application = LoanApplication(
        uuid.uuid4(),
        subject,
        LoanTerms(240_000, 12),
        utcnow(),
        purpose=LoanPurpose.OTHER,
        stated_monthly_income_cents=500_000,
    )
    async with rt.engine.begin() as conn:
        await rt.append(conn, await make_offer(rt, conn, application, utcnow()))
    [offered] = await loans_of(rt, subject)
    accepted = await accept_offer(
        rt, subject, offered.loan_id, offered.disclosure.disclosure_version
    )
    return subject, accepted


def control(bureau_url: str, method: str, path: str, body: dict[str, object]) -> httpx.Response:
    resp = httpx.request(method, f"{bureau_url}{path}", json=body, timeout=5)
    resp.raise_for_status()
    return resp


def bureau_file(bureau_url: str, ahead: int) -> dict[str, Any]:
    files = httpx.get(f"{bureau_url}/sandbox/furnished", timeout=5).json()["files"]
    activity = month_end(month(ahead)).isoformat()
    [found] = [f for f in files if f["activity_date"] == activity]
    return dict(found)


def line_of(file: dict[str, Any], loan: LoanView) -> str | None:
    number = account_number(loan.loan_id)
    lines = [r for r in file["records"] if r[42:72].strip() == number]
    assert len(lines) <= 1
    return lines[0] if lines else None


async def event_types(rt: ServiceRuntime, stream: str) -> list[str]:
    async with rt.engine.connect() as conn:
        return [e.event_type for e in await rt.store.read_stream(conn, stream)]


async def test_a_month_is_furnished_once_delivered_and_sealed_in_the_log(
    reporting: ServiceRuntime, bureau_url: str
) -> None:
    rt = reporting
    subject, loan = await active_loan(rt)
    with pytest.raises(MonthNotOver):
        await run_furnishing(rt, month(0), today=month_end(month(0)))

    first = await furnish(rt, 0)
    assert first.period == period_of(month(0))
    assert first.delivered and first.bureau_file_id
    assert first.record_count >= 1
    kept = bureau_file(bureau_url, 0)
    assert kept["furnisher_id"] == "EXPENSURA"
    assert kept["file_id"] == first.bureau_file_id
    line = line_of(kept, loan)
    assert line is not None
    assert line[123:125] == "11"  # current: disbursed this month, nothing due yet
    assert line[92:101] == "000002400"  # highest credit: $2,400

    again = await furnish(rt, 0)
    assert again == first  # the first run's result; nothing produced or sent again
    produced = await event_types(rt, file_stream(first.period))
    assert produced == ["loans.FurnishingFileProduced", "loans.FurnishingFileDelivered"]
    assert (await event_types(rt, loan_stream(loan.loan_id))).count("loans.AccountFurnished") == 1

    # The log holds the line sealed with the borrower's key, never the line itself.
    async with rt.engine.connect() as conn:
        raw = (
            await conn.execute(
                select(event_log.c.record, event_log.c.subject_id).where(
                    event_log.c.stream_id == loan_stream(loan.loan_id),
                    event_log.c.event_type == "loans.AccountFurnished",
                )
            )
        ).one()
        [opened] = [
            e
            for e in await rt.store.read_stream(conn, loan_stream(loan.loan_id))
            if e.event_type == "loans.AccountFurnished"
        ]
    assert raw.subject_id == subject
    assert opened.payload.record == line
    assert line.encode() not in raw.record and line[:100].encode() not in raw.record
    assert opened.purpose.value == "loan-service-provision"


async def test_a_file_not_delivered_while_the_bureau_is_down_is_delivered_by_the_next_run(
    reporting: ServiceRuntime, bureau_url: str
) -> None:
    rt = reporting
    _, loan = await active_loan(rt)
    control(bureau_url, "PUT", "/sandbox/outage", {"down": True})
    try:
        down = await furnish(rt, 1)
        assert not down.delivered and down.bureau_file_id is None
        assert down.delivery_attempts == 1
        await deliver_pending(rt)  # the worker's retry, still down
    finally:
        control(bureau_url, "PUT", "/sandbox/outage", {"down": False})
    assert await event_types(rt, file_stream(down.period)) == ["loans.FurnishingFileProduced"]
    files = httpx.get(f"{bureau_url}/sandbox/furnished", timeout=5).json()["files"]
    assert month_end(month(1)).isoformat() not in [f["activity_date"] for f in files]

    retried = await furnish(rt, 1)
    assert retried.delivered and retried.delivery_attempts == 3
    assert (retried.sha256, retried.produced_at) == (down.sha256, down.produced_at)
    assert line_of(bureau_file(bureau_url, 1), loan) is not None
    await deliver_pending(rt)  # nothing owed: nothing sent again
    assert await event_types(rt, file_stream(down.period)) == [
        "loans.FurnishingFileProduced",
        "loans.FurnishingFileDelivered",
    ]


def file_dispute(bureau_url: str, subject: str, loan: LoanView, reason: str) -> str:
    body = {
        "account_number": account_number(loan.loan_id),
        "consumer_reference": subject,
        "reason": reason,
    }
    return str(control(bureau_url, "POST", "/sandbox/disputes", body).json()["dispute_id"])


def bureau_response(bureau_url: str, dispute_id: str) -> dict[str, Any] | None:
    disputes = httpx.get(f"{bureau_url}/sandbox/disputes", timeout=5).json()["disputes"]
    [found] = [d for d in disputes if d["dispute_id"] == dispute_id]
    response: dict[str, Any] | None = found["response"]
    return response


async def test_disputes_are_received_with_their_deadline_answered_and_flow_into_the_next_file(
    reporting: ServiceRuntime, bureau_url: str
) -> None:
    rt = reporting
    agreed_subject, agreed = await active_loan(rt)  # the records will agree
    paid_subject, paid_late = await active_loan(rt)  # a payment recorded after the file
    gone_subject, gone = await active_loan(rt)  # not theirs, says the consumer

    await furnish(rt, 2)
    before = bureau_file(bureau_url, 2)
    late_line = line_of(before, paid_late)
    assert late_line is not None and late_line[123:125] in ("71", "78")  # behind on paper
    # The borrower had paid: the payment reaches the records after the file was made.
    two = sum(p.amount_cents for p in paid_late.disclosure.payment_schedule[:2])
    await pay(rt, paid_subject, paid_late.loan_id, two, "pay-two-" + uuid.uuid4().hex[:8])
    # Someone paid a little on the other one since, too: its records moved as well.
    await pay(rt, gone_subject, gone.loan_id, 1_000, "pay-some-" + uuid.uuid4().hex[:8])

    agreed_id = file_dispute(bureau_url, agreed_subject, agreed, "not late")
    paid_id = file_dispute(bureau_url, paid_subject, paid_late, "I paid")
    gone_id = file_dispute(bureau_url, gone_subject, gone, "not my account")
    recorded = await fetch_disputes(rt)
    assert recorded[-3:] == [agreed_id, paid_id, gone_id]
    assert await fetch_disputes(rt) == []  # each dispute once

    # Every dispute recorded with its deadline: 30 days from the bureau's receipt.
    for dispute_id in (agreed_id, paid_id, gone_id):
        view = await dispute_of(rt, dispute_id)
        assert view.deadline - view.received_at == timedelta(days=30)
        assert (await event_types(rt, f"bureau-dispute-{dispute_id}"))[0] == (
            "loans.BureauDisputeReceived"
        )

    # The records agree with the line furnished: verified as reported, automatically.
    assert (await dispute_of(rt, agreed_id)).outcome == "verified-as-reported"
    assert await event_types(rt, f"bureau-dispute-{agreed_id}") == [
        "loans.BureauDisputeReceived",
        "loans.BureauDisputeAnswered",
    ]
    response = bureau_response(bureau_url, agreed_id)
    assert response is not None and response["outcome"] == "verified-as-reported"

    # They do not (a payment recorded since): open for the investigator, and overdue after
    # its deadline.
    waiting = {d.dispute_id: d for d in await open_disputes(rt)}
    assert paid_id in waiting and gone_id in waiting and agreed_id not in waiting
    assert waiting[paid_id].records_agree is False and not waiting[paid_id].overdue
    late = await log_overdue(rt, waiting[paid_id].deadline + timedelta(seconds=1))
    assert paid_id in [d.dispute_id for d in late]
    assert bureau_response(bureau_url, paid_id) is None

    with pytest.raises(InvalidCorrection):  # a modification names its values
        await answer_dispute(rt, paid_id, DisputeOutcome.MODIFIED, OFFICER)
    with pytest.raises(InvalidCorrection):  # and they must make a consistent line
        await answer_dispute(
            rt,
            paid_id,
            DisputeOutcome.MODIFIED,
            OFFICER,
            Correction(ReportedStatus.CURRENT, 100_000, 500, None),
        )
    correction = Correction(ReportedStatus.CURRENT, 123_456, 0, None)
    await answer_dispute(rt, paid_id, DisputeOutcome.MODIFIED, OFFICER, correction)
    with pytest.raises(AlreadyAnswered):
        await answer_dispute(rt, paid_id, DisputeOutcome.VERIFIED_AS_REPORTED, OFFICER)
    await answer_dispute(rt, gone_id, DisputeOutcome.DELETED, OFFICER)
    response = bureau_response(bureau_url, paid_id)
    assert response is not None and response["outcome"] == "modified"
    assert [d.dispute_id for d in await open_disputes(rt)].count(paid_id) == 0
    async with rt.engine.connect() as conn:
        [answered] = [
            e
            for e in await rt.store.read_stream(conn, f"bureau-dispute-{paid_id}")
            if e.event_type == "loans.BureauDisputeAnswered"
        ]
    assert answered.actor.id == "officer-1" and answered.subject_id == paid_subject
    assert answered.purpose.value == "legal-compliance"

    # The next file: the correction in the corrected account's line, each answer flagged
    # XH, the deleted account gone.
    await furnish(rt, 3)
    after = bureau_file(bureau_url, 3)
    corrected = line_of(after, paid_late)
    assert corrected is not None
    assert corrected[123:125] == "11"  # status
    assert corrected[154:163] == "000001234"  # $1,234.56 reported as 1234
    assert corrected[163:172] == "000000000"  # nothing past due
    assert corrected[152:154] == "XH"
    confirmed = line_of(after, agreed)
    assert confirmed is not None and confirmed[152:154] == "XH"
    assert line_of(after, gone) is None

    # The month after: the records speak again, nothing flagged; the deleted one stays out.
    await furnish(rt, 4)
    later = bureau_file(bureau_url, 4)
    for loan in (paid_late, agreed):
        line = line_of(later, loan)
        assert line is not None and line[152:154] == "  "
    line = line_of(later, paid_late)
    assert line is not None and line[154:163] != "000001234"
    assert line_of(later, gone) is None


async def test_an_open_dispute_is_flagged_in_the_file(
    reporting: ServiceRuntime, bureau_url: str
) -> None:
    rt = reporting
    subject, loan = await active_loan(rt)
    await furnish(rt, 5)
    await pay(rt, subject, loan.loan_id, 1_000, "pay-" + uuid.uuid4().hex[:8])  # records move
    dispute_id = file_dispute(bureau_url, subject, loan, "wrong balance")
    assert dispute_id in await fetch_disputes(rt)
    assert (await dispute_of(rt, dispute_id)).outcome is None
    await furnish(rt, 6)
    line = line_of(bureau_file(bureau_url, 6), loan)
    assert line is not None and line[152:154] == "XB"


async def test_the_bureau_takes_the_known_portfolio_and_refuses_it_with_a_wrong_total(
    reporting: ServiceRuntime,
) -> None:
    """The checked-in file of the unit tests, as the bureau sees it: accepted whole, and
    refused (422, nothing kept) with a count or a total that does not add up."""
    known = (Path(__file__).parents[1] / "unit" / "data" / "metro2_known_portfolio.txt").read_text(
        encoding="ascii"
    )
    settings = loans_settings(reporting)
    assert settings.credit_bureau_key is not None
    # Our program id at the bureau, where it reads it (13-22; blank in the file as checked in).
    program_id = "KNOWN" + uuid.uuid4().hex[:5].upper()
    known = known[:12] + program_id + known[22:]
    trailer_at = known.rindex("0426TRAILER")

    def tampered(position: int, value: str) -> str:
        start = trailer_at + position - 1
        return known[:start] + value + known[start + len(value) :]

    async with CreditBureauClient(settings.credit_bureau_url, "expensura", KEY) as bureau:
        for bad in (
            tampered(12, "000000005"),  # total base records
            tampered(84, "000000002"),  # accounts with status 11
            tampered(408, "000019284"),  # total current balance
        ):
            with pytest.raises(BureauRefused) as refused:
                await bureau.furnish(bad)
            assert refused.value.status == 422
        receipt = await bureau.furnish(known)
    assert receipt.accepted == 4 and receipt.rejected == ()
