"""The loans service: loan applications, refused until the applicant's e-mail is proven and
their real name verified; their fraud and risk screening and review (USE-6); their
assessment (USE-2); the loan's lifecycle (USE-3) and credit reporting (SHR-4).

The composition root: the only module that imports the features' views."""

from pathlib import Path

import expensura_events.catalog  # noqa: F401  (registers the event types)
from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service
from expensura_events.web.app import create_app
from expensura_loans.applications.projection import ProvenEmails, VerifiedSubjects
from expensura_loans.applications.service import seal_legacy_amounts
from expensura_loans.applications.views import router as applications_router
from expensura_loans.assessment.views import router as assessment_router
from expensura_loans.erasure import erase_loans_state
from expensura_loans.reporting.service import bureau_disputes_worker, furnishing_worker
from expensura_loans.reporting.views import router as reporting_router
from expensura_loans.retention.service import place_retention_holds, release_retention_holds
from expensura_loans.risk.views import router as risk_router
from expensura_loans.servicing.service import servicing_cycle
from expensura_loans.servicing.views import router as servicing_router
from expensura_loans.settings import LoansSettings

service_definition = ServiceDefinition(
    spec=service(ServiceName.LOANS),
    description="Loan assessment, lifecycle, legal retention and credit reporting.",
    migrations=Path(__file__).parent / "migrations",
    routers=[
        applications_router,
        assessment_router,
        servicing_router,
        reporting_router,
        risk_router,
    ],
    projections=[VerifiedSubjects, ProvenEmails],
    workers=[
        seal_legacy_amounts,
        servicing_cycle,
        furnishing_worker,
        bureau_disputes_worker,
        release_retention_holds,
    ],
    settings_class=LoansSettings,
    erase_subject=erase_loans_state,
    place_holds=place_retention_holds,
)

app = create_app(service_definition)
