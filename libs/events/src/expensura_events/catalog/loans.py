"""Events of the loans service (so far: applications, gated on real-name verification)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import DataCategory, Grade

# A loan amount is credit data about the applicant: sealed with their key. So are what the
# loan is for and the income they stated (absent from applications received before).
AmountCents = Annotated[int, PersonalData(DataCategory.LOAN_RECORD, Grade.SENSITIVE), Field(gt=0)]
LoanPurposeName = Annotated[
    str, PersonalData(DataCategory.LOAN_RECORD, Grade.SENSITIVE), Field(max_length=40)
]
IncomeCents = Annotated[int, PersonalData(DataCategory.INCOME, Grade.SENSITIVE), Field(ge=0)]


@event_type("loans.LoanApplicationReceived", source="loans")
class LoanApplicationReceived(DomainEvent):
    application_id: UUID
    amount_cents: AmountCents
    term_months: int = Field(gt=0, le=120)
    loan_purpose: LoanPurposeName | None = None
    stated_monthly_income_cents: IncomeCents | None = None


@event_type("loans.LoanApplicationRefused", source="loans")
class LoanApplicationRefused(DomainEvent):
    reason: str = Field(max_length=200)
