"""Use case of assessment (USE-2): consent's decision, the bureau's report, the rules, and
one transaction that records the decision with everything it rested on.

Both calls come before the transaction and write nothing: a dependency that does not answer
leaves the application as it was (503). The inquiry id is the application's, so a retry
after a failed commit gets the bureau's first report again: one application, one inquiry
on the applicant's file. Two requests at once both ask; the first to record the decision
wins and the other is refused, having written nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from expensura_events.catalog.loans_assessment import (
    AssessmentDecision,
    AssessmentNotPermitted,
    CreditReportRequested,
    PermissiblePurpose,
)
from expensura_events.catalog.loans_notices import CustomerNoticeRequested
from expensura_events.contracts.decisions import DecisionOut, DecisionRequest
from expensura_events.decisions_client import ConsentUnavailable, request_decision
from expensura_events.envelope import Actor, DomainEvent, LegalBasis, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, DataCategory, LegalGround, Purpose
from expensura_loans.applications.domain import application_stream
from expensura_loans.applications.service import application_of
from expensura_loans.assessment import store
from expensura_loans.assessment.bureau import (
    BureauRefused,
    BureauUnavailable,
    CreditBureauClient,
)
from expensura_loans.assessment.domain import (
    AssessmentOutcome,
    assess,
    facts_of,
)
from expensura_loans.retention.service import record_envelope
from expensura_loans.risk import service as risk
from expensura_loans.servicing.service import make_offer
from expensura_loans.settings import loans_settings

# What the assessment uses, as consent's purposes name it (consent's CREDIT_ASSESSMENT).
CATEGORIES = [DataCategory.CREDIT_RECORD, DataCategory.CREDIT_SCORE, DataCategory.INCOME]
# ECOA (Reg B §1002.9) obliges the notice: it rests on that law, not on consent.
NOTICE_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="ECOA Reg B 12 CFR 1002.9")


class UnknownApplication(LookupError):
    """Not the caller's application (or no longer readable: its applicant was erased)."""


class AlreadyAssessed(Exception):
    def __init__(self, decision: str) -> None:
        super().__init__(f"the application was already assessed: {decision}")
        self.decision = decision


class AssessmentNotAllowed(Exception):
    """Consent did not allow it; the refusal is recorded."""


class DependencyDown(Exception):
    """Consent or the bureau did not answer (or no bureau is configured): nothing changed."""


@dataclass(frozen=True)
class AssessmentResult:
    application_id: UUID
    outcome: AssessmentOutcome
    decided_at: datetime


async def assess_application(
    rt: ServiceRuntime, applicant_id: str, application_id: UUID
) -> AssessmentResult:
    """The applicant asks for their application to be assessed. Raises `HeldForReview` or
    `RefusedAfterReview` (USE-6) before anything is asked of anyone."""
    application = await application_of(rt, applicant_id, application_id)
    if application is None:
        raise UnknownApplication(str(application_id))
    async with rt.engine.connect() as conn:
        # USE-6: a held application waits for its risk review; nothing is asked or pulled.
        await risk.ensure_not_held(conn, application_id)
        decided = await store.decision_of(conn, application_id)
    if decided is not None:
        raise AlreadyAssessed(decided)
    facts = facts_of(application)  # NotAssessable: nothing to ask anyone

    actor = Actor(kind=ActorKind.USER, id=applicant_id)
    stream = application_stream(application_id)
    consent = await _ask_consent(rt, applicant_id)
    if not consent.allowed:
        async with rt.engine.begin() as conn:
            refused = AssessmentNotPermitted(
                application_id=application_id,
                decision_id=consent.decision_id,
                reason=consent.reason[:200] or "not allowed",
            )
            await rt.append(
                conn,
                [
                    record_envelope(
                        rt,
                        refused,
                        stream_id=stream,
                        subject_id=applicant_id,
                        actor=actor,
                        purpose=Purpose.CREDIT_ASSESSMENT,
                    )
                ],
            )
        raise AssessmentNotAllowed(consent.reason)

    report = await _pull_report(rt, applicant_id, application_id)
    decided_at = utcnow()
    assessment = assess(
        application_id,
        report,
        facts,
        decided_at=decided_at,
        notice_id=uuid5(NAMESPACE_URL, f"adverse-action:{application_id}"),
    )
    basis = consent.basis.legal_basis()
    bureau = report.get("bureau")
    bureau_name = str(bureau.get("name", "unknown")) if isinstance(bureau, dict) else "unknown"
    requested = CreditReportRequested(
        application_id=application_id,
        inquiry_id=str(application_id),
        permissible_purpose=PermissiblePurpose.CREDIT_TRANSACTION,
        bureau=bureau_name,
    )
    async with rt.engine.begin() as conn:
        if not await store.record_decision(
            conn, application_id, assessment.outcome.decision.value, decided_at
        ):
            raise AlreadyAssessed(await store.decision_of(conn, application_id) or "unknown")
        envelopes = [
            record_envelope(
                rt,
                event,
                stream_id=stream,
                subject_id=applicant_id,
                actor=actor,
                purpose=purpose,
                legal_basis=legal_basis,
            )
            for event in (requested, *assessment.events)
            for purpose, legal_basis in [_why(event, basis)]
        ]
        if assessment.outcome.decision is AssessmentDecision.APPROVED:
            envelopes += await make_offer(rt, conn, application, decided_at)
        await rt.append(conn, envelopes)
    return AssessmentResult(application_id, assessment.outcome, decided_at)


def _why(event: DomainEvent, basis: LegalBasis) -> tuple[Purpose, LegalBasis]:
    """The purpose and basis each event records: the assessment's, on the applicant's
    consent; the notice to send, a communication the law requires."""
    if isinstance(event, CustomerNoticeRequested):
        return Purpose.COMMUNICATION, NOTICE_BASIS
    return Purpose.CREDIT_ASSESSMENT, basis


async def _ask_consent(rt: ServiceRuntime, applicant_id: str) -> DecisionOut:
    request = DecisionRequest(
        subject_id=applicant_id,
        purpose=Purpose.CREDIT_ASSESSMENT,
        categories=CATEGORIES,
        recipient=loans_settings(rt).credit_bureau_partner_id,
        requester=rt.name,
    )
    try:
        return await request_decision(
            rt.settings.service_urls["consent"], request, caller=rt.service_identity
        )
    except ConsentUnavailable as exc:
        raise DependencyDown(str(exc)) from None


async def _pull_report(
    rt: ServiceRuntime, applicant_id: str, application_id: UUID
) -> dict[str, Any]:
    settings = loans_settings(rt)
    if settings.credit_bureau_key is None:
        raise DependencyDown("no credit bureau is configured (EXPENSURA_CREDIT_BUREAU_KEY)")
    try:
        async with CreditBureauClient(
            settings.credit_bureau_url,
            settings.credit_bureau_subscriber_id,
            settings.credit_bureau_key,
            timeout=settings.credit_bureau_timeout_seconds,
        ) as bureau:
            return await bureau.pull_report(
                applicant_id, str(application_id), PermissiblePurpose.CREDIT_TRANSACTION
            )
    except (BureauUnavailable, BureauRefused) as exc:
        raise DependencyDown(f"credit bureau: {type(exc).__name__}") from None
