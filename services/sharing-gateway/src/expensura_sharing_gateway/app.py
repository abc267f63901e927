"""The sharing-gateway service. Its domain arrives with its own issue; the skeleton already runs,
reports health and readiness, and serves its log feed and OpenAPI document."""

import expensura_events.catalog  # noqa: F401  (registers the event types)
from expensura_events.http import create_app
from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service

service_definition = ServiceDefinition(
    spec=service(ServiceName.SHARING_GATEWAY),
    description="The only path by which personal data leaves the company.",
)

app = create_app(service_definition)
