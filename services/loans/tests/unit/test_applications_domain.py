"""Loan application rules in memory: USE-1's verification gate, the e-mail proof gate and
the input limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from expensura_events.catalog.loans import LoanApplicationReceived, LoanApplicationRefused
from expensura_events.obligations import enforced_by
from expensura_loans.applications.domain import (
    MAX_AMOUNT_CENTS,
    MAX_STATED_MONTHLY_INCOME_CENTS,
    MAX_TERM_MONTHS,
    InvalidTerms,
    LoanApplication,
    LoanTerms,
    applicant_stream,
    application_stream,
    decide,
)
from expensura_loans.applications.views import ApplicationRequest

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def application(amount_cents: int = 150_000, term_months: int = 12) -> LoanApplication:
    return LoanApplication(uuid.uuid4(), "subject-1", LoanTerms(amount_cents, term_months), NOW)


@pytest.mark.obligation("USE-1")
def test_without_verification_an_application_is_refused() -> None:
    event = decide(application(), applicant_verified=False, email_proven=True)
    assert isinstance(event, LoanApplicationRefused)
    assert event.reason == "real-name verification required"


@pytest.mark.parametrize("verified", [True, False])
def test_without_a_proven_e_mail_an_application_is_refused(verified: bool) -> None:
    event = decide(application(), applicant_verified=verified, email_proven=False)
    assert isinstance(event, LoanApplicationRefused)
    assert event.reason == "e-mail ownership proof required"


@pytest.mark.obligation("USE-1")
def test_a_verified_applicant_s_application_is_received_with_its_terms() -> None:
    app = application(amount_cents=250_000, term_months=24)
    event = decide(app, applicant_verified=True, email_proven=True)
    assert isinstance(event, LoanApplicationReceived)
    assert (event.application_id, event.amount_cents, event.term_months) == (
        app.application_id,
        250_000,
        24,
    )


def test_the_verification_gate_is_marked_as_where_use_1_is_enforced() -> None:
    where = [e.where for e in enforced_by().get("USE-1", [])]
    assert "expensura_loans.applications.domain:decide" in where


@pytest.mark.parametrize(
    ("amount_cents", "term_months"),
    [
        (0, 12),
        (-1, 12),
        (MAX_AMOUNT_CENTS + 1, 12),
        (100, 0),
        (100, -3),
        (100, MAX_TERM_MONTHS + 1),
    ],
)
def test_terms_outside_the_limits_are_refused(amount_cents: int, term_months: int) -> None:
    with pytest.raises(InvalidTerms):
        LoanTerms(amount_cents, term_months)


def test_the_limits_themselves_are_allowed() -> None:
    assert LoanTerms(1, 1) and LoanTerms(MAX_AMOUNT_CENTS, MAX_TERM_MONTHS)


@pytest.mark.parametrize(
    "body",
    [
        {"amount_cents": MAX_AMOUNT_CENTS + 1},
        {"term_months": MAX_TERM_MONTHS + 1},
        {"amount_cents": 0},
        {"stated_monthly_income_cents": -1},
        {"stated_monthly_income_cents": MAX_STATED_MONTHLY_INCOME_CENTS + 1},
        {"purpose": "a yacht"},
    ],
)
def test_the_request_model_holds_the_same_limits(body: dict[str, object]) -> None:
    """The edge answers 422 for what the domain would refuse, before any work."""
    valid = {
        "amount_cents": MAX_AMOUNT_CENTS,
        "term_months": MAX_TERM_MONTHS,
        "purpose": "vehicle",
        "stated_monthly_income_cents": MAX_STATED_MONTHLY_INCOME_CENTS,
    }
    ApplicationRequest.model_validate(valid)
    with pytest.raises(ValidationError):
        ApplicationRequest.model_validate(valid | body)


def test_refusals_go_to_the_applicant_s_stream_and_applications_to_their_own() -> None:
    app = application()
    assert applicant_stream("subject-1") != applicant_stream("subject-2")
    assert application_stream(app.application_id) != applicant_stream("subject-1")
    assert str(app.application_id) in application_stream(app.application_id)
