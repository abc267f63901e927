"""The sharing gateway: the only path by which personal data leaves the company."""

from pathlib import Path

import expensura_events.catalog  # noqa: F401  (registers the event types)
from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service
from expensura_events.web.app import create_app
from expensura_sharing_gateway.disclosures.projection import DisputeCases
from expensura_sharing_gateway.disclosures.service import seal_legacy_case_references
from expensura_sharing_gateway.disclosures.views import router as disclosures_router
from expensura_sharing_gateway.erasure import erase_gateway_state
from expensura_sharing_gateway.partner_auth.service import retention
from expensura_sharing_gateway.partner_auth.views import router as auth_router
from expensura_sharing_gateway.partners.projection import CredentialContainment
from expensura_sharing_gateway.partners.views import router as partners_router
from expensura_sharing_gateway.settings import GatewaySettings
from expensura_sharing_gateway.statistics.views import router as statistics_router
from expensura_sharing_gateway.transfers.views import router as transfers_router

service_definition = ServiceDefinition(
    spec=service(ServiceName.SHARING_GATEWAY),
    description="The only path by which personal data leaves the company: partners, "
    "agreements, minimised disclosures on consent or legal ground, statistics.",
    migrations=Path(__file__).parent / "migrations",
    routers=[auth_router, partners_router, disclosures_router, statistics_router, transfers_router],
    projections=[DisputeCases, CredentialContainment],
    workers=[seal_legacy_case_references],
    settings_class=GatewaySettings,
    erase_subject=erase_gateway_state,
    retention=retention,
)

app = create_app(service_definition)
