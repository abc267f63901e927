"""The identity service: accounts, devices, verification, staff, rights (see README)."""

from pathlib import Path

import expensura_events.catalog  # noqa: F401  (registers the event types)
from expensura_events.http import create_app
from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service
from expensura_identity.accounts.views import router as accounts_router

service_definition = ServiceDefinition(
    spec=service(ServiceName.IDENTITY),
    description="Accounts, devices, real-name verification, staff access and data-subject "
    "rights for Expensura.",
    migrations=Path(__file__).parent / "migrations",
    routers=[accounts_router],
)

app = create_app(service_definition)
