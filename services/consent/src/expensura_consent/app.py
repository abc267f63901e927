"""The consent service: purposes, policy versions, consent records, legal grounds, decisions."""

from pathlib import Path

import expensura_events.catalog  # noqa: F401  (registers the event types)
from expensura_consent.decisions.service import retention
from expensura_consent.decisions.views import router as decisions_router
from expensura_consent.erasure import erase_consent_state
from expensura_consent.grounds.service import seal_legacy_ground_texts
from expensura_consent.grounds.views import router as grounds_router
from expensura_consent.policy.service import publish_initial_version_on_start
from expensura_consent.policy.views import router as policy_router
from expensura_consent.policy.worker import consent_worker
from expensura_consent.purposes.views import router as purposes_router
from expensura_consent.recipients.projection import RegisteredPartners
from expensura_consent.recipients.views import router as recipients_router
from expensura_consent.records.views import router as records_router
from expensura_consent.settings import ConsentSettings
from expensura_consent.subjects.projection import KnownSubjects
from expensura_consent.subjects.views import router as subjects_router
from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service
from expensura_events.web.app import create_app

service_definition = ServiceDefinition(
    spec=service(ServiceName.CONSENT),
    description="The authority every service asks before it uses or discloses personal data.",
    migrations=Path(__file__).parent / "migrations",
    routers=[
        purposes_router,
        records_router,
        decisions_router,
        grounds_router,
        policy_router,
        subjects_router,
        recipients_router,
    ],
    projections=[KnownSubjects, RegisteredPartners],
    workers=[consent_worker, seal_legacy_ground_texts],
    settings_class=ConsentSettings,
    erase_subject=erase_consent_state,
    retention=retention,
)

app = create_app(service_definition, on_startup=publish_initial_version_on_start)
