"""Credit assessment rules in memory (USE-2): the allow-list, the decisions, the payment
figure, the adverse-action notice and the events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from expensura_events.catalog.loans_assessment import (
    AdverseActionNoticeIssued,
    ApplicationAssessed,
    AssessmentDecision,
)
from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.obligations import enforced_by
from expensura_events.registry import personal_fields
from expensura_events.vocabulary import DataCategory, Grade
from expensura_loans.applications.domain import LoanPurpose
from expensura_loans.assessment.domain import (
    ASSESSMENT_INPUTS,
    MODEL_VERSION,
    ApplicationFacts,
    AssessmentOutcome,
    DisallowedInput,
    MissingInput,
    PrincipalReason,
    adverse_action_notice,
    assess,
    inputs_for_assessment,
    score,
)
from expensura_loans.servicing.domain import monthly_payment_cents

NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
BUREAU = {
    "name": "Sandbox Credit Bureau",
    "address": "1 Ledger Way, Springfield, IL 62701",
    "phone": "1-800-555-0199",
    "website": "https://bureau.example",
}
CONSUMER = {
    "full_name": "Ada Q. Applicant",
    "date_of_birth": "1961-04-02",
    "address": "12 Elm Street, Springfield",
    "marital_status": "separated",
}
DELINQUENT = "Delinquent past or present credit obligations with others"
EXCESSIVE = "Excessive obligations in relation to income"
INQUIRIES = "Number of recent inquiries on credit bureau report"
SHORT_HISTORY = "Insufficient length of credit history"


def report(
    *,
    status: str = "ok",
    score_value: int | None = 760,
    months: int = 96,
    tradelines: int = 4,
    debt_cents: int = 50_000,
    utilisation: int = 18,
    delinquencies: int = 0,
    inquiries: int = 1,
    public_records: int = 0,
) -> dict[str, Any]:
    """A bureau report as the wire contract shapes it; the defaults are the good profile."""
    frozen = status == "frozen"
    return {
        "report_id": "rpt-1",
        "inquiry_id": "inq-1",
        "status": status,
        "bureau": BUREAU,
        "score": None
        if frozen or score_value is None
        else {
            "value": score_value,
            "model": "sandbox-score-v1",
            "key_factors": ["Serious delinquency", "Too many inquiries last 12 months"],
        },
        "credit": None
        if frozen
        else {
            "months_since_oldest_tradeline": months,
            "open_tradelines": tradelines,
            "total_monthly_debt_payments_cents": debt_cents,
            "revolving_utilisation_percent": utilisation,
            "delinquencies_last_24_months": delinquencies,
            "inquiries_last_12_months": inquiries,
            "public_records": public_records,
        },
        "consumer": None if frozen else CONSUMER,
    }


def poor() -> dict[str, Any]:
    return report(score_value=560, delinquencies=3, inquiries=7, utilisation=92, debt_cents=250_000)


def thin() -> dict[str, Any]:
    return report(status="no-file", score_value=None, months=3, tradelines=1, debt_cents=0)


def facts(
    amount_cents: int = 1_000_000, term_months: int = 36, income_cents: int = 600_000
) -> ApplicationFacts:
    return ApplicationFacts(amount_cents, term_months, LoanPurpose.HOME_IMPROVEMENT, income_cents)


def leaf_paths(obj: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in obj.items():
        path = f"{prefix}{key}"
        out |= leaf_paths(value, f"{path}.") if isinstance(value, dict) else {path}
    return out


# Every field of the wire report (and of the application) that the rules may not read.
DISALLOWED = [
    "report_id",
    "inquiry_id",
    "bureau.name",
    "bureau.address",
    "bureau.phone",
    "bureau.website",
    "score.model",
    "score.key_factors",
    "credit.revolving_utilisation_percent",
    "credit.public_records",
    "consumer",
    "consumer.full_name",
    "consumer.date_of_birth",
    "consumer.address",
    "consumer.marital_status",
    "application.loan_purpose",
]


# --- the allow-list ---------------------------------------------------------------------------


@pytest.mark.obligation("USE-2")
def test_the_allow_list_names_no_consumer_field_and_only_fields_that_exist() -> None:
    assert not [p for p in ASSESSMENT_INPUTS if p.split(".")[0] == "consumer"]
    application = {f"application.{f}" for f in ApplicationFacts.__dataclass_fields__}
    assert ASSESSMENT_INPUTS.issubset(leaf_paths(report()) | application)


def test_the_disallowed_list_covers_every_field_the_allow_list_leaves_out() -> None:
    application = {f"application.{f}" for f in ApplicationFacts.__dataclass_fields__}
    assert (leaf_paths(report()) | application) - ASSESSMENT_INPUTS <= set(DISALLOWED)


@pytest.mark.obligation("USE-2")
@pytest.mark.parametrize("path", DISALLOWED)
def test_any_other_field_makes_the_assessment_fail(path: str) -> None:
    inputs = inputs_for_assessment(report(), facts())
    score(inputs)  # the allowed inputs alone are fine
    with pytest.raises(DisallowedInput) as refused:
        score({**inputs, path: "1961-04-02"})
    assert refused.value.paths == [path]


@pytest.mark.obligation("USE-2")
def test_inputs_from_a_report_full_of_consumer_data_hold_none_of_it() -> None:
    inputs = inputs_for_assessment(report(), facts())
    assert set(inputs) == ASSESSMENT_INPUTS
    assert not [k for k in inputs if k.startswith("consumer")]
    assert not set(CONSUMER.values()) & {v for v in inputs.values() if isinstance(v, str)}
    assert inputs["credit.delinquencies_last_24_months"] == 0
    assert inputs["application.amount_cents"] == 1_000_000


def test_a_missing_input_is_refused_rather_than_guessed() -> None:
    inputs = inputs_for_assessment(report(), facts())
    del inputs["credit.delinquencies_last_24_months"]
    with pytest.raises(MissingInput):
        score(inputs)


# --- decisions ----------------------------------------------------------------------------------


@pytest.mark.obligation("USE-2")
def test_a_good_profile_is_approved_without_reasons() -> None:
    outcome = score(inputs_for_assessment(report(), facts()))
    assert outcome == AssessmentOutcome(AssessmentDecision.APPROVED, (), MODEL_VERSION)


@pytest.mark.obligation("USE-2")
def test_a_poor_profile_is_refused_with_the_delinquency_first() -> None:
    outcome = score(inputs_for_assessment(poor(), facts(income_cents=400_000)))
    assert outcome.decision is AssessmentDecision.REFUSED
    assert outcome.reasons[0] == DELINQUENT
    assert {EXCESSIVE, INQUIRIES} <= set(outcome.reasons)


@pytest.mark.obligation("USE-2")
def test_a_thin_file_cannot_be_assessed_for_its_short_history() -> None:
    outcome = score(inputs_for_assessment(thin(), facts()))
    assert outcome.decision is AssessmentDecision.CANNOT_ASSESS
    assert outcome.reasons[0] == SHORT_HISTORY


@pytest.mark.obligation("USE-2")
def test_a_frozen_file_cannot_be_assessed() -> None:
    outcome = score(inputs_for_assessment(report(status="frozen"), facts()))
    assert outcome.decision is AssessmentDecision.CANNOT_ASSESS
    assert outcome.reasons[0] == "Credit file frozen at the consumer's request"


@pytest.mark.obligation("USE-2")
def test_the_new_payment_counts_in_the_debt_to_income_ratio() -> None:
    """$2,000 of existing payments on $5,000 a month is 40 %, under the 43 % line; a
    $10,000 loan over a year adds well over $150 a month, which crosses it."""
    inputs = inputs_for_assessment(report(debt_cents=200_000), facts(1_000_000, 12, 500_000))
    outcome = score(inputs)
    assert outcome.decision is AssessmentDecision.REFUSED
    assert outcome.reasons == (EXCESSIVE,)
    small = score(inputs_for_assessment(report(debt_cents=200_000), facts(10_000, 12, 500_000)))
    assert small.decision is AssessmentDecision.APPROVED


def test_without_income_no_obligation_is_affordable() -> None:
    outcome = score(inputs_for_assessment(report(), facts(income_cents=0)))
    assert outcome.reasons == (EXCESSIVE,)


def test_recent_inquiries_alone_do_not_refuse_but_add_to_a_short_history() -> None:
    assert score(inputs_for_assessment(report(inquiries=7), facts())).decision == "approved"
    both = score(inputs_for_assessment(report(inquiries=7, months=12), facts()))
    assert both.decision is AssessmentDecision.REFUSED
    assert both.reasons == (INQUIRIES, "Limited credit experience")


@pytest.mark.obligation("USE-2")
def test_at_most_four_principal_reasons_are_given() -> None:
    """Five rules speak against this profile; the lightest is left out."""
    worst = report(score_value=500, delinquencies=4, inquiries=9, months=12, debt_cents=400_000)
    outcome = score(inputs_for_assessment(worst, facts(income_cents=300_000)))
    assert len(outcome.reasons) == 4
    assert outcome.reasons[:2] == (DELINQUENT, EXCESSIVE)
    with pytest.raises(ValueError):
        AssessmentOutcome(AssessmentDecision.REFUSED, tuple(PrincipalReason)[:5])


# --- the payment ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_cents", "term_months", "rate", "expected_cents"),
    [
        (1_000_000, 12, "0.06", 86_066),  # $10,000, 6 % APR, 12 months: $860.66
        (20_000_000, 360, "0.06", 119_910),  # $200,000, 6 %, 30 years: $1,199.10
        (1_200_000, 12, "0", 100_000),  # no interest: the amount over the term
    ],
)
def test_the_monthly_payment_matches_published_amortisation_figures(
    amount_cents: int, term_months: int, rate: str, expected_cents: int
) -> None:
    assert monthly_payment_cents(amount_cents, Decimal(rate), term_months) == expected_cents


# --- the adverse-action notice ----------------------------------------------------------------


@pytest.mark.obligation("USE-2")
def test_the_notice_of_a_refusal_holds_every_required_part() -> None:
    bad = poor()
    outcome = score(inputs_for_assessment(bad, facts(income_cents=400_000)))
    text = adverse_action_notice(outcome, bad["bureau"], bad["score"], NOW).render_text()
    for part in [
        *outcome.reasons,
        "Expensura",
        "Equal Credit Opportunity Act",
        "marital status, age",
        "Federal Trade Commission",
        "Sandbox Credit Bureau",
        BUREAU["address"],
        BUREAU["phone"],
        "did not make this decision and is unable to provide you the specific reasons",
        "free copy",
        "60 days",
        "dispute the accuracy",
        "Your credit score: 560",
        "from a low of 300 to a high of 850",
        "Serious delinquency",
        "Too many inquiries last 12 months",
        "2026-11-26",
    ]:
        assert part in text, part
    assert text.index(DELINQUENT) < text.index(outcome.reasons[1])


def test_the_notice_of_a_frozen_file_names_the_bureau_but_no_score() -> None:
    frozen = report(status="frozen")
    outcome = score(inputs_for_assessment(frozen, facts()))
    notice = adverse_action_notice(outcome, frozen["bureau"], frozen["score"], NOW)
    text = notice.render_text()
    assert notice.credit_score is None
    assert "Credit file frozen at the consumer's request" in text
    assert "Sandbox Credit Bureau" in text and "60 days" in text
    assert "credit score:" not in text.lower()


def test_an_approval_takes_no_notice() -> None:
    outcome = score(inputs_for_assessment(report(), facts()))
    with pytest.raises(ValueError):
        adverse_action_notice(outcome, BUREAU, None, NOW)


def test_the_score_s_key_factors_are_four_plus_inquiries_when_they_are_a_fifth() -> None:
    outcome = AssessmentOutcome(AssessmentDecision.REFUSED, (PrincipalReason.RECENT_INQUIRIES,))
    factors = ["f1", "f2", "f3", "f4", "f5", "Number of recent inquiries"]
    notice = adverse_action_notice(outcome, BUREAU, {"value": 600, "key_factors": factors}, NOW)
    assert notice.credit_score is not None
    assert notice.credit_score.key_factors == ("f1", "f2", "f3", "f4", factors[5])
    plain = adverse_action_notice(outcome, BUREAU, {"value": 600, "key_factors": factors[:5]}, NOW)
    assert plain.credit_score is not None and len(plain.credit_score.key_factors) == 4


# --- the events ---------------------------------------------------------------------------------


@pytest.mark.obligation("USE-2", "USE-10")
def test_a_refusal_logs_the_decision_its_inputs_the_notice_and_asks_for_it_to_be_sent() -> None:
    application_id, notice_id = uuid.uuid4(), uuid.uuid4()
    result = assess(
        application_id, poor(), facts(income_cents=400_000), decided_at=NOW, notice_id=notice_id
    )
    assessed, notice, send = result.events
    assert isinstance(assessed, ApplicationAssessed)
    assert isinstance(notice, AdverseActionNoticeIssued)
    assert isinstance(send, CustomerNoticeRequested)
    assert result.outcome.decision is assessed.decision is AssessmentDecision.REFUSED
    assert assessed.model_version == MODEL_VERSION
    assert set(assessed.inputs) == ASSESSMENT_INPUTS
    assert assessed.inputs["credit.delinquencies_last_24_months"] == 3
    assert notice.reasons == assessed.reasons and notice.reasons[0] == DELINQUENT
    assert notice.bureau == "Sandbox Credit Bureau"
    assert send.notice_id == notice_id and send.kind is NoticeKind.ADVERSE_ACTION
    assert DELINQUENT in send.body and "Sandbox Credit Bureau" in send.body
    assert "free copy" in send.body and "Your credit score: 560" in send.body


def test_an_approval_logs_the_decision_alone() -> None:
    result = assess(uuid.uuid4(), report(), facts(), decided_at=NOW, notice_id=uuid.uuid4())
    assert [type(e) for e in result.events] == [ApplicationAssessed]


@pytest.mark.obligation("USE-2")
def test_the_logged_inputs_are_sealed_as_credit_data() -> None:
    marked = personal_fields(ApplicationAssessed)
    assert (marked["inputs"].category, marked["inputs"].grade) == (
        DataCategory.CREDIT_RECORD,
        Grade.SENSITIVE,
    )


def test_the_rules_are_marked_as_where_use_2_is_enforced() -> None:
    where = {e.where for e in enforced_by().get("USE-2", [])}
    assert "expensura_loans.assessment.domain:score" in where
    assert "expensura_loans.assessment.domain:inputs_for_assessment" in where
