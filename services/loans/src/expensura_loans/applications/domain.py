"""Loan applications: who may apply and what an application may ask for. Pure rules.

USE-1: loan services are refused until the applicant's real name is verified, and the
refusal is itself recorded. So are they until the applicant has proved they receive mail at
their account's e-mail (the sign-up's proof): loan communications and breach notices go
there. An application names its terms, what the loan is for and the applicant's stated monthly
income (what the assessment reads, `assessment.domain`); its decision is the assessment's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from expensura_events.catalog.loans import LoanApplicationReceived, LoanApplicationRefused
from expensura_events.envelope import LegalBasis
from expensura_events.obligations import enforces
from expensura_events.vocabulary import LegalGround, Purpose

# Input limits: what one application may ask for, and state.
MAX_AMOUNT_CENTS = 10_000_000
MAX_TERM_MONTHS = 120
MAX_STATED_MONTHLY_INCOME_CENTS = 100_000_000  # $1 million a month

PURPOSE = Purpose.LOAN_SERVICE_PROVISION
BASIS = LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="loan application")
REFUSED_UNVERIFIED = "real-name verification required"
REFUSED_EMAIL_UNPROVEN = "e-mail ownership proof required"


class ApplicationStatus(StrEnum):
    RECEIVED = "received"
    # A risk signal fired on receipt (USE-6): nothing proceeds until a risk analyst concludes.
    HELD_FOR_REVIEW = "held-for-review"


class LoanPurpose(StrEnum):
    """What the loan is for, as the applicant names it."""

    DEBT_CONSOLIDATION = "debt-consolidation"
    HOME_IMPROVEMENT = "home-improvement"
    VEHICLE = "vehicle"
    MEDICAL = "medical"
    EDUCATION = "education"
    MAJOR_PURCHASE = "major-purchase"
    OTHER = "other"


class InvalidTerms(ValueError):
    """The amount or term is outside what one application may ask for."""


class VerificationRequired(Exception):
    """USE-1: the applicant's real name is not verified; the refusal has been recorded."""


class EmailProofRequired(Exception):
    """The applicant has not proved their e-mail; the refusal has been recorded."""


@dataclass(frozen=True)
class LoanTerms:
    amount_cents: int
    term_months: int

    def __post_init__(self) -> None:
        if not 0 < self.amount_cents <= MAX_AMOUNT_CENTS:
            raise InvalidTerms(f"the amount must be 1 to {MAX_AMOUNT_CENTS} cents")
        if not 0 < self.term_months <= MAX_TERM_MONTHS:
            raise InvalidTerms(f"the term must be 1 to {MAX_TERM_MONTHS} months")


@dataclass(frozen=True)
class LoanApplication:
    application_id: UUID
    subject_id: str
    terms: LoanTerms
    received_at: datetime
    status: ApplicationStatus = ApplicationStatus.RECEIVED
    # None only on applications received before they were asked for (loans_0005).
    purpose: LoanPurpose | None = None
    stated_monthly_income_cents: int | None = None

    def __post_init__(self) -> None:
        income = self.stated_monthly_income_cents
        if income is not None and not 0 <= income <= MAX_STATED_MONTHLY_INCOME_CENTS:
            raise InvalidTerms(f"the income must be 0 to {MAX_STATED_MONTHLY_INCOME_CENTS} cents")


@enforces("USE-1")
def decide(
    application: LoanApplication, *, applicant_verified: bool, email_proven: bool
) -> LoanApplicationReceived | LoanApplicationRefused:
    """The event an application leads to: received, or refused without a proven e-mail or
    without verification (the e-mail first: it comes first in the app, at sign-up)."""
    if not email_proven:
        return LoanApplicationRefused(reason=REFUSED_EMAIL_UNPROVEN)
    if not applicant_verified:
        return LoanApplicationRefused(reason=REFUSED_UNVERIFIED)
    return LoanApplicationReceived(
        application_id=application.application_id,
        amount_cents=application.terms.amount_cents,
        term_months=application.terms.term_months,
        loan_purpose=application.purpose,
        stated_monthly_income_cents=application.stated_monthly_income_cents,
    )


def applicant_stream(subject_id: str) -> str:
    """An applicant's refusals (they have no application to belong to)."""
    return f"applicant-{subject_id}"


def application_stream(application_id: UUID) -> str:
    """One application's events."""
    return f"application-{application_id}"
