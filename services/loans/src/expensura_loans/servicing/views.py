"""Servicing over HTTP: the borrower's loans with their Truth-in-Lending disclosure, the
acceptance of an offer, payments (each with an `Idempotency-Key`), and balance disputes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from expensura_events.envelope import utcnow
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Conflict, NotFound, Problem
from expensura_loans.applications.domain import MAX_AMOUNT_CENTS
from expensura_loans.risk.problems import hold_problem
from expensura_loans.risk.service import HeldForReview, RefusedAfterReview
from expensura_loans.servicing.domain import (
    MAX_DISPUTE_REASON,
    DisclosureNotShown,
    IllegalTransition,
    InvalidPayment,
    LoanState,
    NotDisputable,
    Overpayment,
)
from expensura_loans.servicing.service import (
    LoanView,
    UnknownLoan,
    accept_offer,
    dispute_balance,
    loans_of,
    pay,
)

router = APIRouter(tags=["loans"])


class ScheduledPaymentOut(BaseModel):
    number: int
    amount_cents: int
    due_date: date


class DisclosureOut(BaseModel):
    """Reg Z §1026.18's figures, as the borrower is shown them before accepting."""

    version: str
    amount_financed_cents: int
    finance_charge_cents: int
    annual_percentage_rate: Decimal
    total_of_payments_cents: int
    payment_schedule: list[ScheduledPaymentOut]


class LoanOut(BaseModel):
    loan_id: UUID
    application_id: UUID
    state: LoanState
    disclosure: DisclosureOut
    principal_outstanding_cents: int | None
    payoff_today_cents: int | None
    paid_cents: int


class LoansOut(BaseModel):
    loans: list[LoanOut]


class AcceptanceIn(BaseModel):
    disclosure_version: Annotated[str, Field(min_length=1, max_length=100)]


class PaymentIn(BaseModel):
    amount_cents: Annotated[int, Field(gt=0, le=2 * MAX_AMOUNT_CENTS)]


class PaymentOut(BaseModel):
    loan: LoanOut
    to_fees_cents: int
    to_interest_cents: int
    to_principal_cents: int


class DisputeIn(BaseModel):
    # What the borrower says is wrong with the balance (sealed in the log).
    reason: Annotated[str, Field(min_length=1, max_length=MAX_DISPUTE_REASON)]


class DisputeOut(BaseModel):
    loan_id: UUID
    case_reference: str


class OverpaymentProblem(Problem):
    status, title = 422, "More than the payoff amount"


class BlankReason(Problem):
    status, title = 422, "A dispute needs its reason"


def _out(view: LoanView) -> LoanOut:
    d = view.disclosure
    return LoanOut(
        loan_id=view.loan_id,
        application_id=view.application_id,
        state=view.state,
        disclosure=DisclosureOut(
            version=d.disclosure_version,
            amount_financed_cents=d.amount_financed_cents,
            finance_charge_cents=d.finance_charge_cents,
            annual_percentage_rate=d.annual_percentage_rate,
            total_of_payments_cents=d.total_of_payments_cents,
            payment_schedule=[
                ScheduledPaymentOut(
                    number=p.number, amount_cents=p.amount_cents, due_date=p.due_date
                )
                for p in d.payment_schedule
            ],
        ),
        principal_outstanding_cents=None if view.balance is None else view.balance.principal_cents,
        payoff_today_cents=view.payoff_cents(utcnow().date()),
        paid_cents=view.paid_cents,
    )


@router.get("/v1/loans")
async def my_loans(caller: CurrentUser, rt: Runtime) -> LoansOut:
    """The caller's loans: offers with their disclosure, and what is owed on the others."""
    return LoansOut(loans=[_out(v) for v in await loans_of(rt, caller.id)])


@router.post("/v1/loans/{loan_id}/acceptance", responses={404: {}, 409: {}})
async def accept(loan_id: UUID, body: AcceptanceIn, caller: CurrentUser, rt: Runtime) -> LoanOut:
    """Accept the offer as shown by this disclosure version; the amount financed is then
    disbursed (409 for another version, a loan that is no open offer, or one held for a
    risk review: the loan stays an open offer)."""
    try:
        return _out(await accept_offer(rt, caller.id, loan_id, body.disclosure_version))
    except UnknownLoan:
        raise NotFound("No such loan of yours.") from None
    except (DisclosureNotShown, IllegalTransition) as exc:
        raise Conflict(str(exc)) from None
    except (HeldForReview, RefusedAfterReview) as exc:
        raise hold_problem(exc) from None


@router.post("/v1/loans/{loan_id}/payments", status_code=201, responses={404: {}, 409: {}, 422: {}})
async def make_payment(
    loan_id: UUID,
    body: PaymentIn,
    caller: CurrentUser,
    rt: Runtime,
    response: Response,
    idempotency_key: Annotated[
        str, Header(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    ],
) -> PaymentOut:
    """Apply a payment (fees, interest to today, then principal). A retry with the same
    `Idempotency-Key` answers 200 with the first payment's result and applies nothing."""
    try:
        result = await pay(rt, caller.id, loan_id, body.amount_cents, idempotency_key)
    except UnknownLoan:
        raise NotFound("No such loan of yours.") from None
    except Overpayment as exc:
        raise OverpaymentProblem(str(exc)) from None
    except (IllegalTransition, InvalidPayment) as exc:
        raise Conflict(str(exc)) from None
    if result.replayed:
        response.status_code = 200
    return PaymentOut(
        loan=_out(result.loan),
        to_fees_cents=result.to_fees_cents,
        to_interest_cents=result.to_interest_cents,
        to_principal_cents=result.to_principal_cents,
    )


@router.post("/v1/loans/{loan_id}/disputes", status_code=201, responses={404: {}, 409: {}})
async def dispute(loan_id: UUID, body: DisputeIn, caller: CurrentUser, rt: Runtime) -> DisputeOut:
    """Dispute the loan's balance: a case is opened, and its reference is the one a
    dispute-resolution disclosure about you must name at the sharing gateway (USE-8). 409 for
    an offer (no balance yet)."""
    try:
        opened = await dispute_balance(rt, caller.id, loan_id, body.reason)
    except UnknownLoan:
        raise NotFound("No such loan of yours.") from None
    except NotDisputable as exc:
        raise Conflict(str(exc)) from None
    except ValueError as exc:  # a reason of blanks only
        raise BlankReason(str(exc)) from None
    return DisputeOut(loan_id=opened.loan_id, case_reference=opened.case_reference)
