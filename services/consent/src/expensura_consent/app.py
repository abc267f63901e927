"""The consent service: purposes, policy versions, consent records, legal grounds, decisions."""

from pathlib import Path

import expensura_events.catalog  # noqa: F401  (registers the event types)
from expensura_consent.subjects.projection import KnownSubjects
from expensura_consent.subjects.views import router as subjects_router
from expensura_events.http import create_app
from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service

service_definition = ServiceDefinition(
    spec=service(ServiceName.CONSENT),
    description="The authority every service asks before it uses or discloses personal data.",
    migrations=Path(__file__).parent / "migrations",
    routers=[subjects_router],
    projections=[KnownSubjects],
)

app = create_app(service_definition)
