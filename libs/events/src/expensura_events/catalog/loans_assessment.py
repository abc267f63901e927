"""Events of credit assessment (USE-2): the bureau inquiry, the decision with the inputs it
was made from, and the adverse-action notice (ECOA/Reg B §1002.9, FCRA §615(a)).

The inputs and the principal reasons are credit data about the applicant ("delinquent
obligations with others" says what their file holds): sealed with their key, so that
erasing the key erases them from the log. The decision, the model version and the bureau's
name stay readable: the loan's lifecycle and the compliance report follow them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import DataCategory, Grade

_CREDIT = PersonalData(DataCategory.CREDIT_RECORD, Grade.SENSITIVE)

# Reg B §1002.9(b)(2): disclosing more than four principal reasons is not helpful to the
# applicant (official interpretation 9(b)(2)-1); the assessment never gives more.
MAX_PRINCIPAL_REASONS = 4

Reason = Annotated[str, Field(min_length=1, max_length=200)]
PrincipalReasons = Annotated[list[Reason], _CREDIT, Field(max_length=MAX_PRINCIPAL_REASONS)]
# The allow-listed inputs, flat and keyed by dotted path (`credit.inquiries_last_12_months`):
# ONE sealed field, so the log proves what was used without anyone reading it unsealed.
AssessmentInputs = Annotated[dict[str, int | str | None], _CREDIT, Field(max_length=50)]
BureauName = Annotated[str, Field(min_length=1, max_length=200)]


class PermissiblePurpose(StrEnum):
    """FCRA §604(a)(3): why we may obtain a consumer report (the bureau's wire values)."""

    CREDIT_TRANSACTION = "credit-transaction"
    ACCOUNT_REVIEW = "account-review"
    COLLECTION = "collection"


class AssessmentDecision(StrEnum):
    APPROVED = "approved"
    REFUSED = "refused"
    # The file is frozen or too thin to score: no decision on creditworthiness was possible.
    CANNOT_ASSESS = "cannot-assess"


@event_type("loans.CreditReportRequested", source="loans")
class CreditReportRequested(DomainEvent):
    """A hard inquiry, with the purpose that permits it (the bureau records it too)."""

    application_id: UUID
    inquiry_id: str = Field(min_length=1, max_length=100)
    permissible_purpose: PermissiblePurpose
    bureau: BureauName


@event_type("loans.ApplicationAssessed", source="loans")
class ApplicationAssessed(DomainEvent):
    """USE-2: the decision, the rules' version and exactly the inputs they read."""

    application_id: UUID
    model_version: str = Field(min_length=1, max_length=100)
    decision: AssessmentDecision
    reasons: PrincipalReasons
    inputs: AssessmentInputs


@event_type("loans.AdverseActionNoticeIssued", source="loans")
class AdverseActionNoticeIssued(DomainEvent):
    """The notice went out for a refusal or an application we could not assess. Its text
    (with the credit score, when one was used) is mailed, not kept in the log."""

    application_id: UUID
    reasons: PrincipalReasons
    bureau: BureauName


@event_type("loans.AssessmentNotPermitted", source="loans")
class AssessmentNotPermitted(DomainEvent):
    """Consent's decision did not allow the assessment (no consent, or withdrawn): no
    report was pulled and nothing was decided."""

    application_id: UUID
    decision_id: UUID
    reason: str = Field(min_length=1, max_length=200)
