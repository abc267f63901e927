"""The incident service: the incident response (workflow, grading, regimes and deadlines),
the blast radius from the logs, breach notices and the public notice, the incidents raised
automatically from risk signals, forged records and broken logs (SEC-4, SEC-5); and the
one notification path: the contact details notices need, kept current from identity's
events, and the customer notices other services ask for (USE-10).

The composition root: the only module that imports the features' views."""

from pathlib import Path

import expensura_events.catalog  # noqa: F401  (registers the event types)
from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service
from expensura_events.web.app import create_app
from expensura_incident.alerts.projection import AutoRaisedIncidents
from expensura_incident.alerts.views import router as alerts_router
from expensura_incident.breach.views import router as breach_router
from expensura_incident.contacts.projection import NotificationContacts
from expensura_incident.contacts.views import router as contacts_router
from expensura_incident.containment.projection import ContainmentOutcomes
from expensura_incident.exposure.projection import ExposureIndex
from expensura_incident.exposure.views import router as exposure_router
from expensura_incident.notices.projection import CustomerNotices
from expensura_incident.notices.service import notice_sender
from expensura_incident.response.service import readings
from expensura_incident.response.views import router as response_router
from expensura_incident.settings import IncidentSettings

service_definition = ServiceDefinition(
    spec=service(ServiceName.INCIDENT),
    description="Incident grading, blast radius from the log, notices and regulator deadlines.",
    migrations=Path(__file__).parent / "migrations",
    routers=[contacts_router, response_router, breach_router, exposure_router, alerts_router],
    settings_class=IncidentSettings,
    projections=[
        NotificationContacts,
        CustomerNotices,
        ExposureIndex,
        ContainmentOutcomes,
        AutoRaisedIncidents,
    ],
    workers=[notice_sender],
    readings=readings,
)

app = create_app(service_definition)
