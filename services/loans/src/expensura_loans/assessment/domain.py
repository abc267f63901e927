"""Credit assessment (USE-2): what the rules may read, the rules, the adverse-action notice.
Pure rules, no I/O.

The rules read only the dotted paths of `ASSESSMENT_INPUTS`, taken from the bureau report
(the wire contract) and from the application; `score` refuses any other input, so nothing
about who the applicant is (name, date of birth, address, marital status: ECOA's prohibited
bases, or not needed) can weigh on a decision. The decision and exactly those inputs are
logged (`loans.ApplicationAssessed`, the inputs sealed with the applicant's key).

A refusal, or an application that could not be assessed, leads to the adverse-action notice:
the principal reasons (Reg B §1002.9(b)(2), at most four), the ECOA notice (§1002.9(b)(1))
and, because a consumer report was used, the FCRA §615(a) disclosures with the credit score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from expensura_events.catalog.loans_assessment import (
    MAX_PRINCIPAL_REASONS,
    AdverseActionNoticeIssued,
    ApplicationAssessed,
    AssessmentDecision,
)
from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.obligations import enforces
from expensura_loans.applications.domain import (
    MAX_AMOUNT_CENTS,
    MAX_TERM_MONTHS,
    InvalidTerms,
    LoanApplication,
    LoanPurpose,
)
from expensura_loans.servicing.domain import monthly_payment_cents

# Logged with every decision: which rules made it. Change it whenever a rule or a threshold
# below changes, so a logged decision can be explained by the rules of its time.
MODEL_VERSION = "expensura-rules-2026.1"

CREDITOR = "Expensura"


class ReportStatus(StrEnum):
    """The bureau's answer to an inquiry (wire values)."""

    OK = "ok"
    FROZEN = "frozen"
    NO_FILE = "no-file"


# --- the allow-list -------------------------------------------------------------------------

STATUS = "status"
CREDIT_SCORE = "score.value"
MONTHS_OF_HISTORY = "credit.months_since_oldest_tradeline"
OPEN_TRADELINES = "credit.open_tradelines"
MONTHLY_DEBT_PAYMENTS = "credit.total_monthly_debt_payments_cents"
DELINQUENCIES = "credit.delinquencies_last_24_months"
RECENT_INQUIRIES = "credit.inquiries_last_12_months"
AMOUNT = "application.amount_cents"
TERM = "application.term_months"
STATED_MONTHLY_INCOME = "application.stated_monthly_income_cents"

# USE-2: every path a rule reads, and nothing else. Left out on purpose: `consumer.*` (age
# and marital status are ECOA prohibited bases; name and address are not needed);
# `credit.revolving_utilisation_percent`, `credit.public_records`, `score.model`,
# `score.key_factors` and `application.loan_purpose` (no rule reads them: minimisation; the
# key factors go into the notice, not into the decision); the report's ids and `bureau.*`.
ASSESSMENT_INPUTS: frozenset[str] = frozenset(
    {
        STATUS,
        CREDIT_SCORE,
        MONTHS_OF_HISTORY,
        OPEN_TRADELINES,
        MONTHLY_DEBT_PAYMENTS,
        DELINQUENCIES,
        RECENT_INQUIRIES,
        AMOUNT,
        TERM,
        STATED_MONTHLY_INCOME,
    }
)

# --- thresholds -----------------------------------------------------------------------------

# The new loan's payment is computed at our highest offered APR, so the debt-to-income
# ratio is never understated for any offer that could follow.
ASSESSMENT_ANNUAL_RATE = Decimal("0.1499")
# 43 %: the general Qualified Mortgage limit of Reg Z §1026.43(e)(2)(vi) until its 2021
# revision, the best-known line beyond which the ability to repay is doubted. The new
# payment is included.
MAX_DEBT_TO_INCOME = Decimal("0.43")
# 620 on the 300-850 scale: the usual boundary between near-prime and subprime.
SCORE_FLOOR = 620
# Any delinquency in the last 24 months counts: recent late payment is the strongest
# single predictor of default, and the bureau reports only those 24 months.
MAX_DELINQUENCIES = 0
# Six or more inquiries in a year: FICO reports that people with six or more are up to
# eight times as likely to file for bankruptcy as people with none.
MAX_RECENT_INQUIRIES = 5
# A score needs an account open six months or more (the scoring models' minimum criteria);
# below that, or with one open tradeline or none, the file is thin and cannot be assessed.
MIN_MONTHS_OF_HISTORY = 6
MIN_OPEN_TRADELINES = 2
# Under two years of history is limited experience: it adds to other doubts, never refuses
# alone (its weight is below `REFUSAL_WEIGHT`).
ESTABLISHED_HISTORY_MONTHS = 24
# A refusal needs this much weight: one strong reason (delinquency, obligations, score), or
# two weaker ones together (inquiries and limited experience).
REFUSAL_WEIGHT = 40

SCORE_RANGE = (300, 850)


class PrincipalReason(StrEnum):
    """The reasons as worded on Reg B's sample forms (Appendix C, Form C-1), where one fits."""

    DELINQUENT_OBLIGATIONS = "Delinquent past or present credit obligations with others"
    EXCESSIVE_OBLIGATIONS = "Excessive obligations in relation to income"
    # Reg B asks for the score's factors, not "low score": the notice lists the key factors
    # the bureau gave with the score (FCRA §615(a)(2)), and this reason ranks after the
    # specific ones.
    CREDIT_SCORE_BELOW_MINIMUM = "Credit score below our minimum (see the key factors below)"
    RECENT_INQUIRIES = "Number of recent inquiries on credit bureau report"
    LIMITED_CREDIT_EXPERIENCE = "Limited credit experience"
    INSUFFICIENT_HISTORY = "Insufficient length of credit history"
    INSUFFICIENT_REFERENCES = "Insufficient number of credit references provided"
    FILE_FROZEN = "Credit file frozen at the consumer's request"
    UNABLE_TO_VERIFY = "Unable to verify credit references"


# How much each reason weighs: the order of the reasons given, and whether they refuse.
REASON_WEIGHTS: Mapping[PrincipalReason, int] = {
    PrincipalReason.DELINQUENT_OBLIGATIONS: 50,
    PrincipalReason.EXCESSIVE_OBLIGATIONS: 50,
    PrincipalReason.CREDIT_SCORE_BELOW_MINIMUM: 40,
    PrincipalReason.RECENT_INQUIRIES: 20,
    PrincipalReason.LIMITED_CREDIT_EXPERIENCE: 20,
}


class DisallowedInput(ValueError):
    """USE-2: the assessment was given a field the purpose may not use."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(f"not an assessment input: {', '.join(paths)}")
        self.paths = paths


class MissingInput(ValueError):
    """An allow-listed input is absent: a decision would rest on less than the rules read."""


@dataclass(frozen=True)
class ApplicationFacts:
    """What the applicant told us that the rules may read."""

    amount_cents: int
    term_months: int
    loan_purpose: LoanPurpose
    stated_monthly_income_cents: int

    def __post_init__(self) -> None:
        if not 0 < self.amount_cents <= MAX_AMOUNT_CENTS:
            raise InvalidTerms(f"the amount must be 1 to {MAX_AMOUNT_CENTS} cents")
        if not 0 < self.term_months <= MAX_TERM_MONTHS:
            raise InvalidTerms(f"the term must be 1 to {MAX_TERM_MONTHS} months")
        if self.stated_monthly_income_cents < 0:
            raise InvalidTerms("the stated income cannot be negative")


class NotAssessable(ValueError):
    """The application does not name what the rules read (received before it was asked)."""


def facts_of(application: LoanApplication) -> ApplicationFacts:
    """What the rules may read of an application."""
    if application.purpose is None or application.stated_monthly_income_cents is None:
        raise NotAssessable("the application names no purpose or income: apply again")
    return ApplicationFacts(
        amount_cents=application.terms.amount_cents,
        term_months=application.terms.term_months,
        loan_purpose=application.purpose,
        stated_monthly_income_cents=application.stated_monthly_income_cents,
    )


@dataclass(frozen=True)
class AssessmentOutcome:
    decision: AssessmentDecision
    reasons: tuple[PrincipalReason, ...] = ()
    model_version: str = MODEL_VERSION

    def __post_init__(self) -> None:
        if len(self.reasons) > MAX_PRINCIPAL_REASONS:
            raise ValueError(f"at most {MAX_PRINCIPAL_REASONS} principal reasons")
        if (self.decision is AssessmentDecision.APPROVED) == bool(self.reasons):
            raise ValueError("an approval gives no reasons; anything else gives at least one")


@enforces("USE-2")
def inputs_for_assessment(report: Mapping[str, Any], facts: ApplicationFacts) -> dict[str, Any]:
    """The allow-listed paths of the report and the application, flat, and nothing else
    (a path whose object the bureau sent as null is None)."""
    inputs: dict[str, Any] = {}
    for path in sorted(ASSESSMENT_INPUTS):
        head, _, field = path.partition(".")
        if head == "application":
            inputs[path] = getattr(facts, field)
        else:
            inputs[path] = _at(report, path)
    return inputs


def _at(report: Mapping[str, Any], path: str) -> Any:
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def debt_to_income(
    monthly_debt_cents: int, new_payment_cents: int, monthly_income_cents: int
) -> Decimal | None:
    """Monthly obligations including the new payment over monthly income; None without
    income (no ratio can be computed, and no obligation is affordable)."""
    if monthly_income_cents <= 0:
        return None
    return Decimal(monthly_debt_cents + new_payment_cents) / Decimal(monthly_income_cents)


@enforces("USE-2")
def score(inputs: Mapping[str, Any]) -> AssessmentOutcome:
    """The decision from the allow-listed inputs only; any other key is refused."""
    disallowed = sorted(set(inputs) - ASSESSMENT_INPUTS)
    if disallowed:
        raise DisallowedInput(disallowed)
    missing = sorted(ASSESSMENT_INPUTS - set(inputs))
    if missing:
        raise MissingInput(f"missing assessment inputs: {', '.join(missing)}")

    status = ReportStatus(inputs[STATUS])
    if status is ReportStatus.FROZEN:
        # The consumer froze their file: we saw nothing, so we decided nothing about them.
        return AssessmentOutcome(
            AssessmentDecision.CANNOT_ASSESS,
            (PrincipalReason.FILE_FROZEN, PrincipalReason.UNABLE_TO_VERIFY),
        )
    thin = _thin_file_reasons(status, inputs)
    if thin:
        return AssessmentOutcome(AssessmentDecision.CANNOT_ASSESS, thin)

    found = _reasons_against(inputs)
    if sum(REASON_WEIGHTS[r] for r in found) < REFUSAL_WEIGHT:
        return AssessmentOutcome(AssessmentDecision.APPROVED)
    # Heaviest first; equal weights keep the order of the rules (a stable sort).
    ranked = sorted(found, key=lambda r: -REASON_WEIGHTS[r])
    return AssessmentOutcome(AssessmentDecision.REFUSED, tuple(ranked[:MAX_PRINCIPAL_REASONS]))


def _thin_file_reasons(
    status: ReportStatus, inputs: Mapping[str, Any]
) -> tuple[PrincipalReason, ...]:
    months, tradelines = inputs[MONTHS_OF_HISTORY], inputs[OPEN_TRADELINES]
    short = months is None or months < MIN_MONTHS_OF_HISTORY
    few = tradelines is None or tradelines < MIN_OPEN_TRADELINES
    if status is ReportStatus.OK and inputs[CREDIT_SCORE] is not None and not short:
        return ()
    reasons = [
        *([PrincipalReason.INSUFFICIENT_HISTORY] if short else []),
        *([PrincipalReason.INSUFFICIENT_REFERENCES] if few else []),
    ]
    # A file without a score that is neither short nor sparse: we cannot say why.
    return tuple(reasons) or (PrincipalReason.UNABLE_TO_VERIFY,)


def _reasons_against(inputs: Mapping[str, Any]) -> list[PrincipalReason]:
    """Every rule that speaks against the application, in the order of the rules."""
    payment = monthly_payment_cents(
        _count(inputs, AMOUNT), ASSESSMENT_ANNUAL_RATE, _count(inputs, TERM)
    )
    ratio = debt_to_income(
        _count(inputs, MONTHLY_DEBT_PAYMENTS), payment, _count(inputs, STATED_MONTHLY_INCOME)
    )
    rules = [
        (PrincipalReason.DELINQUENT_OBLIGATIONS, _count(inputs, DELINQUENCIES) > MAX_DELINQUENCIES),
        (PrincipalReason.EXCESSIVE_OBLIGATIONS, ratio is None or ratio > MAX_DEBT_TO_INCOME),
        (PrincipalReason.CREDIT_SCORE_BELOW_MINIMUM, _count(inputs, CREDIT_SCORE) < SCORE_FLOOR),
        (PrincipalReason.RECENT_INQUIRIES, _count(inputs, RECENT_INQUIRIES) > MAX_RECENT_INQUIRIES),
        (
            PrincipalReason.LIMITED_CREDIT_EXPERIENCE,
            _count(inputs, MONTHS_OF_HISTORY) < ESTABLISHED_HISTORY_MONTHS,
        ),
    ]
    return [reason for reason, applies in rules if applies]


def _count(inputs: Mapping[str, Any], path: str) -> int:
    value = inputs[path]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{path} must be a whole number, not {value!r}")
    return value


# --- the events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    """One assessment: its outcome and the events that record it, in order."""

    outcome: AssessmentOutcome
    events: tuple[ApplicationAssessed | AdverseActionNoticeIssued | CustomerNoticeRequested, ...]


NOTICE_TITLE = "Your loan application"


@enforces("USE-2")
def assess(
    application_id: UUID,
    report: Mapping[str, Any],
    facts: ApplicationFacts,
    *,
    decided_at: datetime,
    notice_id: UUID,
) -> Assessment:
    """The decision with its inputs; when the answer is not an approval, the notice as
    issued (its reasons) and as it is to be sent to the applicant (its text, USE-10)."""
    inputs = inputs_for_assessment(report, facts)
    outcome = score(inputs)
    reasons = [r.value for r in outcome.reasons]
    assessed = ApplicationAssessed(
        application_id=application_id,
        model_version=outcome.model_version,
        decision=outcome.decision,
        reasons=reasons,
        inputs=inputs,
    )
    if outcome.decision is AssessmentDecision.APPROVED:
        return Assessment(outcome, (assessed,))
    bureau = report.get("bureau")
    notice = adverse_action_notice(
        outcome, bureau if isinstance(bureau, Mapping) else {}, report.get("score"), decided_at
    )
    return Assessment(
        outcome,
        (
            assessed,
            AdverseActionNoticeIssued(
                application_id=application_id, reasons=reasons, bureau=notice.bureau_name
            ),
            CustomerNoticeRequested(
                notice_id=notice_id,
                kind=NoticeKind.ADVERSE_ACTION,
                title=NOTICE_TITLE,
                body=notice.render_text(),
            ),
        ),
    )


# --- the adverse-action notice ----------------------------------------------------------------

# Reg B §1002.9(b)(1) and Appendix A: a creditor that is not a bank, savings association or
# credit union names the FTC; the CFPB supervises non-bank lenders too, so both are named.
ECOA_AGENCY = "Federal Trade Commission, Consumer Response Center, Washington, DC 20580"
CFPB = "Consumer Financial Protection Bureau, 1700 G Street NW, Washington, DC 20552"
ECOA_NOTICE = (
    "NOTICE: The federal Equal Credit Opportunity Act prohibits creditors from "
    "discriminating against credit applicants on the basis of race, color, religion, national "
    "origin, sex, marital status, age (provided the applicant has the capacity to enter into a "
    "binding contract); because all or part of the applicant's income derives from any public "
    "assistance program; or because the applicant has in good faith exercised any right under "
    "the Consumer Credit Protection Act. The federal agency that administers compliance with "
    f"this law concerning this creditor is the {ECOA_AGENCY}. You may also contact the {CFPB}."
)
# FCRA §609(f)(1)(C) and §615(a)(2): up to four key factors, and a fifth when the number of
# inquiries is one of them and not among the first four.
MAX_KEY_FACTORS = 4


@dataclass(frozen=True)
class CreditScoreDisclosure:
    """FCRA §615(a)(2): the score used, its range, its key factors, its date and source."""

    value: int
    key_factors: tuple[str, ...]
    scored_on: date
    provided_by: str
    range_low: int = SCORE_RANGE[0]
    range_high: int = SCORE_RANGE[1]


@dataclass(frozen=True)
class AdverseActionNotice:
    creditor: str
    decided_at: datetime
    decision: AssessmentDecision
    reasons: tuple[str, ...]
    bureau_name: str
    bureau_address: str
    bureau_phone: str
    bureau_website: str | None
    credit_score: CreditScoreDisclosure | None
    ecoa_notice: str = ECOA_NOTICE

    def render_text(self) -> str:
        """The plain-text e-mail body."""
        action = (
            "we are unable to approve it"
            if self.decision is AssessmentDecision.REFUSED
            else "we could not assess it, so we are unable to approve it at this time"
        )
        lines = [
            "Dear applicant,",
            "",
            f"Thank you for applying for a loan with {self.creditor}. "
            f"After reviewing your application, {action}.",
            "",
            f"Date of our decision: {self.decided_at.date().isoformat()}",
            "",
            "Principal reasons for our decision:",
            *(f"- {reason}" for reason in self.reasons),
            "",
            "Our decision was based in whole or in part on information obtained in a report "
            "from the consumer reporting agency listed below. The consumer reporting agency "
            "did not make this decision and is unable to provide you the specific reasons "
            "why it was taken.",
            "",
            self.bureau_name,
            self.bureau_address,
            f"Phone: {self.bureau_phone}",
            *([f"Website: {self.bureau_website}"] if self.bureau_website else []),
            "",
            "Under the Fair Credit Reporting Act, you have the right to obtain a free copy of "
            "your consumer report from the consumer reporting agency named above, if you "
            "request it no later than 60 days after you receive this notice. You also have "
            "the right to dispute the accuracy or completeness of any information in the "
            "report with the consumer reporting agency.",
        ]
        if self.credit_score is not None:
            s = self.credit_score
            lines += [
                "",
                "We also obtained your credit score from this consumer reporting agency and "
                "used it in making our decision. Your credit score is a number that reflects "
                "the information in your consumer report and can change as that information "
                "changes.",
                f"Your credit score: {s.value}",
                f"Date: {s.scored_on.isoformat()}",
                f"Provided by: {s.provided_by}",
                f"Scores range from a low of {s.range_low} to a high of {s.range_high}.",
                "Key factors that adversely affected your credit score:",
                *(f"- {factor}" for factor in s.key_factors),
            ]
        lines += ["", self.ecoa_notice, "", self.creditor, ""]
        return "\n".join(lines)


def adverse_action_notice(
    outcome: AssessmentOutcome,
    bureau: Mapping[str, Any],
    score: Mapping[str, Any] | None,
    decided_at: datetime,
) -> AdverseActionNotice:
    """The notice for a refusal or an application we could not assess. `bureau` and
    `score` are the report's objects of the same name (score: None when none was used)."""
    if outcome.decision is AssessmentDecision.APPROVED:
        raise ValueError("an approval takes no adverse-action notice")
    if decided_at.tzinfo is None:
        raise ValueError("decided_at must be timezone-aware")
    website = bureau.get("website")
    return AdverseActionNotice(
        creditor=CREDITOR,
        decided_at=decided_at,
        decision=outcome.decision,
        reasons=tuple(r.value for r in outcome.reasons),
        bureau_name=_required(bureau, "name"),
        bureau_address=_required(bureau, "address"),
        bureau_phone=_required(bureau, "phone"),
        bureau_website=website if isinstance(website, str) and website else None,
        credit_score=None
        if score is None
        else _score_disclosure(score, _required(bureau, "name"), decided_at.date()),
    )


def _score_disclosure(score: Mapping[str, Any], bureau: str, on: date) -> CreditScoreDisclosure:
    value = score.get("value")
    low, high = SCORE_RANGE
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"a credit score is a whole number from {low} to {high}")
    factors = [str(f) for f in score.get("key_factors") or []]
    chosen = factors[:MAX_KEY_FACTORS]
    inquiries = [f for f in factors[MAX_KEY_FACTORS:] if "inquir" in f.lower()]
    if inquiries and not any("inquir" in f.lower() for f in chosen):
        chosen.append(inquiries[0])
    # The score was obtained for this decision: its date is the decision's.
    return CreditScoreDisclosure(value, tuple(chosen), on, bureau)


def _required(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if not isinstance(value, str) or not value:
        raise ValueError(f"the bureau's {key} is required on the notice")
    return value
